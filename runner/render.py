"""Render executed notebooks to standalone HTML that opens in a browser without Jupyter.

nbconvert does not sanitize notebook outputs by default; a run's notebooks hold
whatever their code printed, so sanitizing is switched on.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter


def render(notebook: Path, target: Path, banner: dict[str, str]) -> None:
    """Write ``target`` from ``notebook`` with a banner naming model, run and verdict."""
    exporter = HTMLExporter(template_name="lab", sanitize_html=True)
    with warnings.catch_warnings():
        # scrapbook's evidence outputs have a mimetype of their own that HTML does not show
        warnings.filterwarnings("ignore", message=".*application/scrapbook.scrap", category=UserWarning)
        body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    strip = " · ".join(f"{html.escape(k)}: <b>{html.escape(v)}</b>" for k, v in banner.items())
    header = (
        '<div style="font-family:sans-serif;padding:6px 12px;background:#eaecee;border-bottom:1px solid #aab7b8">'
        f"Signoff · {strip}</div>"
    )
    head, tag, rest = body.partition("<body")
    open_end = rest.index(">") + 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(head + tag + rest[:open_end] + header + rest[open_end:], encoding="utf-8")
