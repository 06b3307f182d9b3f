"""Inline SVG charts, drawn in Python: no script, no font or library from anywhere.

Every mark carries ``data-key`` and ``data-value`` (the number it draws), so a test, or a
person with the browser's inspector, can check the picture against the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

#: Colour-blind-safe (Okabe-Ito, then Tol's muted); grey is kept for "other".
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#332288",
    "#88CCEE",
    "#882255",
)
OTHER = "#9AA0A6"
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10ⁿ) giving about ``ticks`` gridlines up to ``top``."""
    raw = max(top, 1) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw)) or 1


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" {_FONT}>' + "".join(body) + "</svg>"
    )


def _mark(
    box: tuple[float, float, float, float], color: str, key: str, value: int, find: str
) -> str:
    """A bar: ``key`` and ``value`` as data, ``find`` is what a click searches the table for."""
    x, y, w, h = box
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{color}" '
        f'data-key="{escape(key)}" data-value="{value}" data-find="{escape(find)}">'
        f"<title>{escape(key.replace('|', ' · '))}: {value}</title></rect>"
    )


def stacked_columns(
    columns: Sequence[str], series: Sequence[tuple[str, Sequence[int], str]], label: str
) -> str:
    """One column per entry of ``columns`` (e.g. days), stacked by ``series``
    (name, one value per column, colour); marks are keyed ``column|name``."""
    width, height, left, bottom, top_pad = 1100, 230, 34, 22, 8
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(columns))]
    step = _nice_step(max(totals, default=0))
    top = step * math.ceil(max(max(totals, default=0), 1) / step)
    plot_w, plot_h = width - left - 6, height - bottom - top_pad
    scale = plot_h / top
    slot = plot_w / max(len(columns), 1)
    body: list[str] = []
    for tick in range(0, top + 1, step):
        y = top_pad + plot_h - tick * scale
        body.append(
            f'<line x1="{left}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{tick}</text>'
        )
    label_every = max(1, math.ceil(len(columns) / 10))
    for i, column in enumerate(columns):
        x = left + i * slot + slot * 0.12
        y = top_pad + plot_h
        for name, values, color in series:
            if values[i]:
                h = values[i] * scale
                y -= h
                box = (x, y, slot * 0.76, h)
                body.append(_mark(box, color, f"{column}|{name}", values[i], name))
        if i % label_every == 0:
            body.append(
                f'<text x="{x + slot * 0.38:.1f}" y="{height - 6}" text-anchor="middle" '
                f'fill="#555">{escape(column[5:])}</text>'
            )
    return _svg(width, height, label, body)


def bars(
    rows: Sequence[tuple[str, int]],
    label: str,
    color: str = PALETTE[0],
    colors: Mapping[str, str] | None = None,
    tips: Mapping[str, str] | None = None,
) -> str:
    """Horizontal bars, one per ``(key, value)``, largest first as given."""
    width, row_h, label_w = 520, 22, 200
    height = row_h * max(len(rows), 1) + 4
    top = max((value for _, value in rows), default=0) or 1
    scale = (width - label_w - 40) / top
    body: list[str] = []
    for i, (key, value) in enumerate(rows):
        y = 2 + i * row_h
        shown = key if len(key) <= 28 else key[:27] + "…"
        tip = (tips or {}).get(key, key)
        body.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" fill="#222">'
            f"<title>{escape(tip)}</title>{escape(shown)}</text>"
        )
        box = (label_w, y + 3, max(value * scale, 1), row_h - 6)
        body.append(_mark(box, (colors or {}).get(key, color), key, value, key))
        body.append(
            f'<text x="{label_w + value * scale + 4:.1f}" y="{y + 15}" fill="#222">{value}</text>'
        )
    return _svg(width, height, label, body)
