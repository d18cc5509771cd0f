"""Render executed notebooks to standalone HTML that opens in a browser without Jupyter.

nbconvert does not sanitize notebook outputs by default, and its ``sanitize_html``
switch escapes headings and paragraphs too (its bleach allows few tags).  A run's
notebooks hold whatever their code displayed, so every piece of HTML on a page
(outputs, rendered markdown) is cleaned by bleach as it is written, with the tags
and inline styles tables and banners need; outputs of other active kinds are dropped.
The page template (``html_template/signoff``) drops JupyterLab's CDN scripts and
sets a Content-Security-Policy that allows none: an archived page runs nothing
and fetches nothing.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nbconvert is imported when a page is rendered: the index and the CSP need none of it
    from nbconvert import HTMLExporter

SAFE_TAGS = [
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "ul", "img", "details", "summary",
    # pandas writes a <style> block before every table; CSS cannot run script, and the
    # Content-Security-Policy below stops it from loading anything
    "style",
]
# No script at all, nothing fetched from the network: an archived page shows what it holds.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
# nbconvert logs a line per sanitized output at INFO: noise in a scheduler's log (Airflow's included)
QUIET = logging.getLogger("signoff.render")
QUIET.setLevel(logging.ERROR)
TEMPLATES = Path(__file__).parent / "html_template"  # "signoff": JupyterLab's page without its scripts
# no ``src`` for an <img> inside an HTML output: it could only point off the page (bleach drops data: URIs);
# plots are image/png outputs, which nbconvert embeds itself
SAFE_ATTRIBUTES = {
    "*": ["class", "style", "title", "id"], "a": ["href"], "img": ["alt", "width", "height"],
    "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"],
}


def render(notebook: Path, target: Path, banner: dict[str, str], code: bool = True) -> None:
    """Write ``target`` from ``notebook`` with a banner naming model, run, verdict and manifest.  Without
    ``code``, the page shows outputs only (the gating report, for readers: its notebook keeps the code)."""
    import nbformat

    with _RENDERING, warnings.catch_warnings():
        # scrapbook's evidence outputs have a mimetype of their own that HTML does not show
        warnings.filterwarnings("ignore", message=".*is not able to be represented", category=UserWarning)
        # the page's <title> (a browser tab, a bookmark) names the notebook, not nbconvert's "Notebook"
        body, _ = _exporter(code).from_notebook_node(nbformat.read(notebook, as_version=4),
                                                 resources={"metadata": {"name": f"{notebook.stem} · Signoff"},
                                                            "signoff": {"csp": CSP, "banner": banner}})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")


_RENDERING = threading.Lock()  # one exporter, one notebook at a time


def warm() -> None:
    """Build both kinds of exporter now (nbconvert's import, the templates' compilation), before a page waits."""
    _exporter(True)
    _exporter(False)


@functools.cache
def _exporter(code: bool) -> HTMLExporter:
    """One exporter per process and kind of page: building one compiles its Jinja templates, about 0.2 s per
    page otherwise.

    Everything HTML is cleaned once, as it is written into the page (the template's ``clean_html``, here with
    the tags and styles above): HTML outputs, and markdown after it is rendered.  nbconvert's preprocessor
    would clean markdown *source*, escaping ``<x>`` in a code span before the markdown escapes it again
    (the page would show ``&lt;x&gt;``); here it only drops outputs of other kinds (scripts, widgets)."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    from runner.audit.sanitize import OutputsOnly

    cleaner = SanitizeHTML(tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES, log=QUIET)
    exporter = HTMLExporter(template_name="signoff", extra_template_basedirs=[str(TEMPLATES)], log=QUIET,
                            exclude_input=not code, exclude_input_prompt=not code, sanitize_html=True)
    exporter.register_filter("clean_html", cleaner.sanitize_html_tags)
    exporter.register_preprocessor(OutputsOnly(log=QUIET, sanitized_output_types=set(),
                                               safe_output_keys=OutputsOnly.KEPT), enabled=True)
    return exporter
