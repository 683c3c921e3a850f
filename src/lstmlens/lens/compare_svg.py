"""The drawings of the comparison page: the memory-reach chart and the saturation scatter.

Both are inline SVG strings (no network, no script): :func:`reach_figure` draws curves of
``reach_k / reach_0`` (or the memory path) by lag on a log10 axis, with dots for the marked
inputs; :func:`saturation_svg` one point per unit at
(fraction of steps shut, fraction open) of one gate, each point focusable and carrying its
unit index in ``data-unit``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import numpy as np

__all__ = ["FLOOR", "PALETTE", "reach_figure", "saturation_svg"]

PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
FLOOR = 1e-12  # the lowest value drawn on the log axis; smaller (and zero) values sit on it


def _log(v: float) -> float:
    return math.log10(max(v, FLOOR))


def reach_figure(
    curves: Mapping[str, np.ndarray],
    width: int = 900,
    height: int = 380,
    *,
    points: Mapping[str, np.ndarray] | None = None,
    label: str = "reach_k / reach_0",
) -> str:
    """Inline SVG: each curve (by lag, already relative to lag 0) on a log10 y axis.

    ``points`` (name -> ``(M, 2)`` rows of (lag, value)) are drawn as dots in their model's
    colour (the marked inputs); ``label`` names the y axis.
    """
    if not curves:
        raise ValueError("reach_figure: expected at least one curve")
    points = {name: p for name, p in (points or {}).items() if p is not None and len(p)}
    left, right, top, bottom = 70, 250, 14, 40
    values = [np.asarray(c, dtype=float) for c in curves.values()]
    values += [np.asarray(p, dtype=float)[:, 1] for p in points.values()]
    kmax = max(len(c) for c in curves.values()) - 1
    lo = math.floor(min(min(_log(float(np.min(v))) for v in values), -1.0))
    hi = max(0, math.ceil(max(_log(float(np.max(v))) for v in values)))
    x = lambda k: left + (k / max(kmax, 1)) * (width - left - right)  # noqa: E731
    parts = [
        f'<svg class="reach" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(label)} by lag, log scale">'
    ]
    step = max(1, math.ceil((hi - lo) / 8))
    lo = hi - step * math.ceil((hi - lo) / step)  # the lowest grid line is the chart's bottom
    floored = any(float(np.min(v)) <= FLOOR for v in values)
    span = height - top - bottom
    y = lambda v: top + (hi - min(max(_log(v), lo), hi)) / (hi - lo) * span  # noqa: E731
    for e in range(hi, lo - 1, -step):
        yy = y(10.0**e)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eceff3"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6575">{"≤ " if floored and e == lo else ""}1e{e}</text>'
        )
    tick = next(n for n in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if kmax / n <= 8)
    for k in range(0, kmax + 1, tick):
        parts.append(
            f'<text x="{x(k):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11" fill="#5b6575">{k}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle" '
        'font-size="12">lag k (steps back from the output step)</text>'
    )
    parts.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" font-size="12" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})" text-anchor="middle">'
        f"{html.escape(label)}</text>"
    )
    for n, (name, curve) in enumerate(curves.items()):
        colour = PALETTE[n % len(PALETTE)]
        pts = " ".join(f"{x(k):.1f},{y(float(v)):.1f}" for k, v in enumerate(curve))
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2" '
            f'data-model="{html.escape(name)}"/>'
        )
        dots = points.get(name)
        if dots is not None:
            parts.append(
                f'<g fill="{colour}" fill-opacity="0.6" data-marked="{html.escape(name)}">'
            )
            parts += [
                f'<circle cx="{x(k):.1f}" cy="{y(float(v)):.1f}" r="2.6"/>'
                for k, v in dots
                if k <= kmax
            ]
            parts.append("</g>")
        ly = top + 16 + 18 * n
        parts.append(
            f'<line x1="{width - right + 10}" x2="{width - right + 30}" y1="{ly - 4}" '
            f'y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>'
        )
        parts.append(
            f'<text x="{width - right + 36}" y="{ly}" font-size="12">'
            f"{html.escape(name[:34])}</text>"
        )
    if points:
        ly = top + 16 + 18 * len(curves) + 8
        parts.append(f'<circle cx="{width - right + 20}" cy="{ly - 4}" r="3" fill="#5b6575"/>')
        parts.append(
            f'<text x="{width - right + 36}" y="{ly}" font-size="12">'
            "dots: the inputs the task marks</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def saturation_svg(left: np.ndarray, right: np.ndarray, gate: str) -> str:
    s, m = 150, 22
    parts = [
        f'<svg viewBox="0 0 {s + m + 6} {s + m + 16}" data-gate="{gate}">',
        f'<text x="{m + s / 2}" y="11" text-anchor="middle" font-size="11">{gate}</text>',
        f'<rect x="{m}" y="16" width="{s}" height="{s}" fill="#fafbfc" stroke="#d9dee6"/>',
        f'<text x="{m + s / 2}" y="{s + m + 12}" text-anchor="middle" font-size="9" '
        'fill="#5b6575">shut (&lt;0.1)</text>',
        f'<text x="9" y="{16 + s / 2}" font-size="9" fill="#5b6575" text-anchor="middle" '
        f'transform="rotate(-90 9 {16 + s / 2})">open (&gt;0.9)</text>',
    ]
    for u, (lv, rv) in enumerate(zip(left, right)):
        if not (math.isfinite(lv) and math.isfinite(rv)):
            continue
        parts.append(
            f'<circle cx="{m + lv * s:.1f}" cy="{16 + s - rv * s:.1f}" r="3.2" '
            f'fill="#2f6fc6" fill-opacity="0.55" data-unit="{u}" tabindex="0">'
            f"<title>{gate}: shut {100 * lv:.0f}%, open {100 * rv:.0f}%</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
