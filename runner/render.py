"""Render executed notebooks to standalone HTML that opens in a browser without Jupyter.

nbconvert does not sanitize notebook outputs by default, and its ``sanitize_html``
switch escapes headings and paragraphs too.  A run's notebooks hold whatever their
code displayed, so their HTML outputs go through nbconvert's SanitizeHTML
preprocessor (bleach), with the tags and inline styles tables and banners need.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors.sanitize import SanitizeHTML

SAFE_TAGS = [
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "ul", "img",
    # pandas writes a <style> block before every table; CSS cannot run script, and the
    # Content-Security-Policy below stops it from loading anything
    "style",
]
# No script at all, nothing fetched from the network: an archived page shows what it holds.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
SAFE_ATTRIBUTES = {
    "*": ["class", "style", "title", "id"], "a": ["href"], "img": ["src", "alt", "width", "height"],
    "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"],
}


def render(notebook: Path, target: Path, banner: dict[str, str]) -> None:
    """Write ``target`` from ``notebook`` with a banner naming model, run and verdict."""
    exporter = HTMLExporter(template_name="lab")
    exporter.register_preprocessor(SanitizeHTML(tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES), enabled=True)
    with warnings.catch_warnings():
        # scrapbook's evidence outputs have a mimetype of their own that HTML does not show
        warnings.filterwarnings("ignore", message=".*is not able to be represented", category=UserWarning)
        body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    strip = " · ".join(f"{html.escape(k)}: <b>{html.escape(v)}</b>" for k, v in banner.items())
    header = (
        '<div style="font-family:sans-serif;padding:6px 12px;background:#eaecee;border-bottom:1px solid #aab7b8">'
        f"Signoff · {strip}</div>"
    )
    body = body.replace("<head>", f'<head>\n<meta http-equiv="Content-Security-Policy" content="{CSP}">', 1)
    head, tag, rest = body.partition("<body")
    open_end = rest.index(">") + 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(head + tag + rest[:open_end] + header + rest[open_end:], encoding="utf-8")
