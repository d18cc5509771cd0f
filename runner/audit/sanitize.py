"""The part of nbconvert's sanitizer a Signoff page uses before its template runs (imported with nbconvert,
when a page is rendered)."""

from __future__ import annotations

from typing import Any

from nbconvert.preprocessors.sanitize import SanitizeHTML


class OutputsOnly(SanitizeHTML):
    """Drops the outputs a page must not carry (scripts, widgets, anything not below) and leaves markdown cells
    alone: HTML and markdown are cleaned by the page template once rendered.  Bleaching markdown *source*
    escapes ``<x>`` in a code span, which the markdown then escapes again."""

    KEPT = {"metadata", "image/jpeg", "image/png", "application/json", "text/plain", "text/latex", "text/html",
            "text/markdown"}

    def preprocess_cell(self, cell: Any, resources: dict, index: int) -> tuple[Any, dict]:
        if cell.cell_type == "markdown":
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
