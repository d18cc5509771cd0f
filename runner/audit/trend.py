"""A gated figure across a model's runs, drawn as a small inline SVG: no script, nothing fetched, so it
stays inside the archive pages' Content-Security-Policy and prints as it shows."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 240, 64, 6
COLOURS = {"pass": "#1e8449", "fail": "#c0392b", "inconclusive": "#b9770e"}
OTHER = "#7f8c8d"  # missing, waived, or a status a later Signoff adds


@dataclass(frozen=True)
class Point:
    run: str
    value: float | None  # None: the run recorded no figure (missing evidence)
    interval: tuple[float, float] | None
    status: str


def svg(points: list[Point], threshold: dict[str, float]) -> str:
    """The runs' figures left to right (oldest first), each interval as a whisker, the threshold as a dashed line;
    each point's tooltip names its run, value and status."""
    drawn = [(i, p) for i, p in enumerate(points) if _finite(p.value)]
    span = [v for _, p in drawn for v in (p.value, *(p.interval or ())) if _finite(v)]
    span += [v for v in threshold.values() if _finite(v)]
    if not span:
        return '<span class="no-trend">no figure recorded</span>'
    low, high = min(span), max(span)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    x_step = (WIDTH - 2 * PAD) / max(len(points) - 1, 1)

    def y(value: float) -> float:
        return round(HEIGHT - PAD - (value - low) / (high - low) * (HEIGHT - 2 * PAD), 1)

    def x(index: int) -> float:
        return round(PAD + index * x_step, 1)

    parts = [f'<line x1="0" x2="{WIDTH}" y1="{y(v)}" y2="{y(v)}" stroke="#c0392b" stroke-dasharray="4 3">'
             f'<title>{html.escape(side)} {v:g}</title></line>' for side, v in threshold.items() if _finite(v)]
    if len(drawn) > 1:
        path = " ".join(f"{x(i)},{y(p.value)}" for i, p in drawn)  # type: ignore[arg-type]
        parts.append(f'<polyline points="{path}" fill="none" stroke="#aab7b8"/>')
    for i, p in drawn:
        at, colour = x(i), COLOURS.get(p.status, OTHER)
        if p.interval and all(_finite(v) for v in p.interval):
            parts.append(f'<line x1="{at}" x2="{at}" y1="{y(p.interval[0])}" y2="{y(p.interval[1])}" '
                         f'stroke="{colour}"/>')
        shown = f"{p.value:.4g}" + (f" [{p.interval[0]:.4g}, {p.interval[1]:.4g}]" if p.interval else "")
        parts.append(f'<circle cx="{at}" cy="{y(p.value)}" r="3" fill="{colour}">'  # type: ignore[arg-type]
                     f"<title>{html.escape(p.run)}: {html.escape(shown)} ({html.escape(p.status)})</title></circle>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">' + "".join(parts) + "</svg>")


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
