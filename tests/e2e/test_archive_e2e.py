"""The audit archive as an auditor meets it: no secrets, safe HTML in a real browser, re-runs, crashes, locks."""

import os
import re
import shutil
import signal

import nbformat
import pytest
from conftest import (
    SECRET,
    URI_PASSWORD,
    ActiveContent,
    decide,
    keep_stages,
    leaky_stage,
    read_json,
    run_folders,
    signoff,
    start_signoff,
    write_notebook,
)

from runner import records
from runner.audit import verify

pytestmark = pytest.mark.slow

SMALL = ["-p", "data.synthetic.n_rows=2000"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium package is needed for the browser check (.ci/run installs it)"
    return found


def open_in_browser(page_file, screenshot):
    """Text, title and every request of a page opened from disk in headless Chromium, how many points its
    charts draw, and whether it fits the window's width (a wide table scrolls inside it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium())
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        text, title, drawn = page.inner_text("body"), page.title(), page.locator("svg circle").count()
        fits = page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return text, title, requests, drawn, fits


def test_no_secret_is_archived_and_pages_are_inert_in_a_browser(example, tmp_path):
    project, run, result = example.project, example.run, example.result
    outputs = project / "outputs"

    # secrets: planted in the environment, a stage parameter (so in Papermill's metadata and injected
    # cell), printed output and a URI; none is left anywhere in the archive, MLflow's copy or the log
    leaky = nbformat.read(run / "notebooks" / "leaky.ipynb", as_version=4)
    assert "note" in leaky.metadata.papermill.parameters
    for path in outputs.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert SECRET.encode() not in content and URI_PASSWORD.encode() not in content, path
    assert SECRET not in result.stdout + result.stderr
    printed = "".join(o.get("text", "") for c in leaky.cells for o in c.get("outputs", []))
    assert "token in use: ***" in printed and "https://***@mlflow.example/" in printed
    assert "stages.leaky.note=***" in read_json(run / "provenance.json")["command"]

    # provenance
    origin = read_json(run / "provenance.json")
    assert origin["data"]["reference"]["generator"]["parameters"]["n_rows"] == 10000
    assert origin["data"]["reference"]["content"]["rows"] == 10000 and origin["seeds"]["seed"] == 42
    assert origin["distributions"]["scikit-learn"] and origin["host"] and origin["user"]
    assert origin["started"] < origin["finished"] and "dirty" in origin["git"]

    # HTML: hostile output neutralised, no script anywhere, CSP on every page
    manifest = read_json(run / "manifest.json")
    for page in (run / "html").glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert ActiveContent(html).found == [], page
        assert "Content-Security-Policy" in html and manifest["sha256"] in html, page
    assert "click me" in (run / "html" / "leaky.html").read_text(encoding="utf-8")

    # in a real browser: the index lists the run, the report shows the verdict, nothing is fetched, nothing runs
    index_text, _, index_requests, _, _ = open_in_browser(outputs / "index.html", tmp_path / "index.png")
    assert run.name in index_text and "PASS" in index_text and "version 1" in index_text
    model_page = outputs / "index-credit-default.html"
    model_text, _, model_requests, drawn, _ = open_in_browser(model_page, tmp_path / "model.png")
    assert "Gated figures across runs" in model_text and run.name in model_text and "promoted" in model_text
    assert drawn == len(read_json(run / "verdict.json")["gates"])  # a point per gate of the one run
    report_text, _, report_requests, _, report_fits = open_in_browser(run / "html" / "report.html",
                                                                      tmp_path / "report.png")
    assert "PASS" in report_text and "Release checklist" in report_text and manifest["sha256"] in report_text
    _, title, leaky_requests, _, leaky_fits = open_in_browser(run / "html" / "leaky.html", tmp_path / "leaky.png")
    assert title != "pwned"
    opened = ((outputs / "index.html", index_requests), (model_page, model_requests),
              (run / "html" / "report.html", report_requests), (run / "html" / "leaky.html", leaky_requests))
    for page, requests in opened:
        assert requests == [page.as_uri()]  # the page itself, nothing else
    assert (tmp_path / "report.png").stat().st_size > 10_000
    wide = [name for name in ("eda", "validate", "explain", "drift") if not open_in_browser(
        run / "html" / f"{name}.html", tmp_path / f"{name}.png")[4]]
    assert report_fits and leaky_fits and wide == []  # tables within the page (the leaky one scrolls in place)

    # permissions: nothing in the run writable by group or others, archived files read-only
    for path in [run, *run.rglob("*")]:
        assert path.stat().st_mode & 0o022 == 0, path



def test_a_killed_run_leaves_no_run_a_second_run_waits_for_the_lock_and_a_dead_holder_is_replaced(project):
    keep_stages(project, "eda")
    first = signoff("run", "params/credit.yaml", *SMALL, cwd=project)
    assert first.returncode == 1, first.stdout + first.stderr  # infra's evidence is missing: blocked, archived
    (earlier,) = run_folders(project)

    waiting = project / "notebooks" / "03_wait.ipynb"  # holds the run (and its lock) until it is killed
    write_notebook(waiting, "import time\ntime.sleep(300)")
    running = start_signoff("run", "params/credit.yaml", *SMALL, cwd=project)
    seen = []
    for line in running.stdout:
        seen.append(line)
        if re.search(r"eda +passed", line):
            break
    # a second run of the same model while the first holds the lock: refused after --wait, holder named
    refused = decide("run", "params/credit.yaml", *SMALL, "--wait", "1", cwd=project)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert f"pid {running.pid}" in refused.stderr and "signoff run params/credit.yaml" in refused.stderr
    os.killpg(running.pid, signal.SIGKILL)  # the run and its kernels, as a crash or an OOM kill would
    running.wait(timeout=30)
    waiting.unlink()

    assert run_folders(project) == [earlier]  # no half run under a real name
    (leftover,) = (project / "outputs" / "credit-default").glob(".tmp-*")
    assert verify.check_run(earlier) == []
    checked = decide("verify", cwd=project)
    assert checked.returncode == 0 and f"note: {leftover}: unfinished run" in checked.stdout

    # the dead process's lock is taken over at once; the new run chains to the last archived one
    after = signoff("run", "params/credit.yaml", *SMALL, "--wait", "0", cwd=project)
    assert after.returncode == 1, after.stdout + after.stderr
    assert "waiting" not in after.stdout
    newest = run_folders(project)[-1]
    assert read_json(newest / "manifest.json")["previous"] == records.sha256_file(earlier / "manifest.json")
    assert decide("verify", cwd=project).returncode == 0


def test_a_rerun_reproduces_from_the_archive_alone(project):
    keep_stages(project, "eda")
    leaky_stage(project)
    env = {"SIGNOFF_TEST_API_TOKEN": SECRET}
    first = signoff("run", "params/credit.yaml", *SMALL, "-p", f"stages.leaky.note={SECRET}", cwd=project, env=env)
    assert first.returncode == 1, first.stdout + first.stderr  # no model: blocked, archived
    (run,) = run_folders(project)
    # the project's notebooks are changed first, and must not matter
    (project / "notebooks" / "01_eda.ipynb").unlink()
    again = signoff("rerun", str(run), cwd=project, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reproduced: every evidence value agrees" in again.stdout
    assert "not registered: a re-run" in again.stdout
    first, second = run_folders(project)
    assert read_json(second / "verdict.json")["rerun_of"] == str(run)
    assert re.search(r"(\d+) evidence values compared", again.stdout).group(1) != "0"
    assert SECRET not in again.stdout + again.stderr
    for path in (project / "outputs").rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
    assert decide("verify", cwd=project).returncode == 0
    assert second.name in (project / "outputs" / "index.html").read_text(encoding="utf-8")


def test_a_run_that_dies_inside_signoff_is_archived_as_error(project):
    keep_stages(project, "eda")
    (project / "templates" / "model_card.md.j2").write_text("{% if %}broken", encoding="utf-8")  # fails late
    result = signoff("run", "params/credit.yaml", *SMALL, cwd=project)
    assert result.returncode == 2 and "the run is archived as ERROR at" in result.stderr, result.stdout + result.stderr
    (run,) = run_folders(project)
    verdict = read_json(run / "verdict.json")
    assert verdict["verdict"] == "ERROR" and "TemplateSyntaxError" in verdict["error"]
    assert [g["id"] for g in verdict["gates"] if g["status"] == "pass"]  # judged before it died: kept
    assert (run / "notebooks" / "eda.ipynb").is_file() and verify.check_run(run) == []
    assert run.name in (project / "outputs" / "index.html").read_text(encoding="utf-8")
