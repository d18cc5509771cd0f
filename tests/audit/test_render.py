"""A rendered page shows markdown as written and runs nothing, whatever a notebook holds."""

import nbformat
from conftest import ActiveContent

from runner.audit import render


def test_markdown_shows_angle_brackets_once_and_no_active_content_survives(tmp_path):
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "ratio `fairness.<feature>` <script>a()</script>",
                                                     "text/plain": "md"}),
        nbformat.v4.new_output("display_data", data={"text/html": "<table><tr><td onclick='b()'>cell</td></tr></table>"
                                                                  "<script>c()</script>",
                               "application/javascript": "d()", "text/plain": "html"}),
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Fairness\n\nEach `fairness.<feature>.<figure>` is a number. "
                                              "<img src=x onerror=e()> [link](javascript:f())"), cell]
    nbformat.write(nb, tmp_path / "stage.ipynb")
    render.render(tmp_path / "stage.ipynb", tmp_path / "stage.html", {"run": "r1"})
    page = (tmp_path / "stage.html").read_text(encoding="utf-8")

    assert "<code>fairness.&lt;feature&gt;.&lt;figure&gt;</code>" in page  # shows fairness.<feature>.<figure>
    assert "<code>fairness.&lt;feature&gt;</code>" in page and "&amp;lt;" not in page  # never escaped twice
    assert '<h1 id="Fairness">' in page and "<td>cell</td>" in page  # headings and tables kept
    assert "<title>stage · Signoff</title>" in page
    assert ActiveContent(page).found == [] and "d()" not in page  # no script, handler, javascript: link or JS output
