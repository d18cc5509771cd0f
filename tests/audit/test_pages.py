"""Pages rendered ahead, in a process of their own: the same page as rendered at the end, banner included."""

import nbformat

from runner.audit import pages, render

BANNER = {"model": "credit", "run": "r1", "verdict": "PASS", "manifest sha256": "ab" * 32}


def _notebook(path, text: str) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nb.cells = [nbformat.v4.new_markdown_cell("# Stage"), cell]
    nbformat.write(nb, path)


def test_pages_rendered_ahead_equal_pages_rendered_at_the_end_once_the_banner_is_filled_in(tmp_path):
    _notebook(tmp_path / "eda.ipynb", "<b>rows</b> & more")
    _notebook(tmp_path / "report.ipynb", "the verdict")
    (tmp_path / "broken.ipynb").write_text("not a notebook")
    ahead = pages.Pages(list(BANNER))
    try:
        ahead.add(tmp_path / "eda.ipynb", tmp_path / "html" / "eda.html")
        ahead.add(tmp_path / "report.ipynb", tmp_path / "html" / "report.html", code=False)
        ahead.add(tmp_path / "broken.ipynb", tmp_path / "html" / "broken.html")
        delivered = ahead.wait()
    finally:
        ahead.close()
    assert delivered == {tmp_path / "html" / "eda.html", tmp_path / "html" / "report.html"}
    assert ahead.fill(delivered, BANNER) == delivered
    for name, code in (("eda", True), ("report", False)):
        render.render(tmp_path / f"{name}.ipynb", tmp_path / "direct" / f"{name}.html", BANNER, code=code)
        assert (tmp_path / "html" / f"{name}.html").read_text() == (tmp_path / "direct" / f"{name}.html").read_text()
    assert sorted(p.name for p in (tmp_path / "html").iterdir()) == ["eda.html", "report.html"]  # nothing half written


def test_a_banner_of_other_keys_fills_nothing_and_the_caller_renders_every_page(tmp_path):
    _notebook(tmp_path / "eda.ipynb", "x")
    ahead = pages.Pages(list(BANNER))
    ahead.add(tmp_path / "eda.ipynb", tmp_path / "eda.html")
    delivered = ahead.wait()
    monitor = {"model": "credit", "monitor": "m1", "verdict": "PASS", "manifest sha256": "cd" * 32}
    assert delivered == {tmp_path / "eda.html"} and ahead.fill(delivered, monitor) == set()
