"""The model card: a short, plain document of what the model is for and how it did, per run."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bleach
import jinja2

from runner import records
from runner.audit.render import CSP, SAFE_TAGS
from runner.config import CARD_KEYS

LINK_PROTOCOLS = ["http", "https", "mailto"]
CARD_TAGS = [tag for tag in SAFE_TAGS if tag != "style"]  # Markdown makes no style, and none is let in
CARD_ATTRIBUTES = {"a": ["href", "title"], "img": ["alt"], "td": ["align"], "th": ["align"]}


def write(template: Path, folder: Path, params: dict[str, Any], verdict: records.Verdict, evidence: dict[str, Any],
          decisions: list[dict[str, Any]] = (), name: str = "model_card") -> list[Path]:
    """Write ``<name>.md`` and ``<name>.html`` into ``folder``; ``decisions`` (approvals, waivers)
    are listed when the card is written again after a sign-off.

    The Markdown keeps the ``card:`` text as written.  The HTML is what a browser opens from the
    archive, so it gets the text without its HTML tags, everything else escaped, and the page
    through bleach: only plain links (http, https, mailto) and no off-page images survive.
    """
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(template.parent), autoescape=False,
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

    def card(text: Callable[[Any], str]) -> str:
        return environment.get_template(template.name).render(
            model=verdict.model, run_id=verdict.run_id, verdict=verdict.verdict, finished=verdict.finished,
            card={key: text(params["card"].get(key, "")) for key in CARD_KEYS}, data=params["data"],
            gates=verdict.gates, stages=verdict.stages, warnings=verdict.warnings,
            ev=lambda key: _fmt(evidence.get(key, "n/a")), fmt=_fmt, decisions=list(decisions),
            task=evidence.get("train.task", "binary"),
            waived={w["gate"] for d in decisions for w in d.get("waivers") or []},
        )

    from nbconvert.filters.markdown import markdown2html_mistune  # a second of imports a `signoff --help` skips

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(card(str), encoding="utf-8")
    shown = card(lambda value: html.unescape(bleach.clean(str(value), tags=[], strip=True)))  # escaped once, below
    body = bleach.clean(markdown2html_mistune(html.escape(shown, quote=False)), tags=CARD_TAGS,
                        attributes=CARD_ATTRIBUTES, protocols=LINK_PROTOCOLS, strip=True)
    (folder / f"{name}.html").write_text(
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>Model card: {html.escape(verdict.model)}</title>\n"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}</style>\n"
        f"</head><body>\n{body}\n</body></html>\n",
        encoding="utf-8",
    )
    return [folder / f"{name}.md", folder / f"{name}.html"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)
