"""Signoff from a notebook: `import runner`, then the same functions the command line calls."""

import nbformat
import pytest
from conftest import keep_stages, run_folders

import runner
from runner.errors import SignoffError


@pytest.mark.slow
def test_a_run_from_python_shows_its_verdict_inline_and_the_archive_verifies(project, monkeypatch):
    keep_stages(project, "train", "validate", "infra", rows=3000)
    monkeypatch.setenv("SIGNOFF_SCRATCH", str(project / "scratch"))
    result = runner.signoff(project / "params" / "credit.yaml", overrides=["registry.promotion=manual"])
    (folder,) = run_folders(project)
    assert result.folder == folder and result.verdict in ("PASS", "WARN") and result.exit_code == 0
    assert "awaiting sign-off" in result.release and result.report.is_file()
    shown = result._repr_html_()  # what JupyterLab displays for the cell's value
    assert result.verdict in shown and "discrimination" in shown and f"{folder.name}" in shown
    assert "95% [" in shown and result.report.as_uri() in shown  # the interval, and a link to the report
    gates = {g["id"]: g for g in result.gates}
    assert gates["discrimination"]["status"] == "pass" and result.evidence["validate.roc_auc"] > 0.7
    assert runner.load(folder) == result and runner.verify(project / "outputs") == []
    (folder / "evidence.json").chmod(0o640)
    (folder / "evidence.json").write_text("{}")
    assert any("evidence.json: modified" in p for p in runner.verify(project / "outputs"))


def test_the_python_api_is_imported_only_when_asked_for_and_says_what_is_wrong(tmp_path):
    assert callable(runner.signoff) and runner.Run is runner.api.Run
    with pytest.raises(AttributeError, match="no attribute 'sign_off'"):
        runner.sign_off  # noqa: B018
    with pytest.raises(SignoffError, match="not a Signoff run folder"):
        runner.load(tmp_path)


@pytest.mark.slow
def test_the_example_notebook_runs_top_to_bottom(project, monkeypatch):
    import papermill

    keep_stages(project, "train", "infra", rows=3000)
    monkeypatch.setenv("SIGNOFF_SCRATCH", str(project / "scratch"))
    done = project / "templates" / "executed.ipynb"
    papermill.execute_notebook(str(project / "templates" / "signoff_in_a_notebook.ipynb"), str(done),
                               cwd=str(project / "templates"), progress_bar=False, kernel_name="python3")
    outputs = [o for cell in nbformat.read(done, as_version=4).cells if cell.cell_type == "code" for o in cell.outputs]
    shown = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("infra.loadable" in page and "PASS" in page for page in shown)  # the verdict, inline
    board = next(page for page in shown if "<td><b>train</b></td>" in page)  # progress: one table, redrawn
    assert "<td><b>infra</b></td><td>passed in" in board and "logged to MLflow" in board
    assert not [o for o in outputs if o.get("name") == "stdout" and " INFO " in o.get("text", "")]  # no log lines
    assert any(o.get("data", {}).get("text/plain") == "[]" for o in outputs)  # the archive verifies
    assert len(run_folders(project)) == 1
