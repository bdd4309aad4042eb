"""Charts as inline SVG, drawn on the server: no script, no chart library, every label escaped.

Colours are presentation attributes (fill="…"), not style attributes, so the page's Content-Security-Policy
(style-src 'self') holds. Each bar segment carries a <title>, which browsers show on hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from ctsentinel.terminal import safe_text

# Calm colours for issuers the watch authorizes; loud ones for those it does not.
AUTHORIZED_COLOURS = ("#2b6cb0", "#4a90c2", "#6fa8dc", "#1f4e79", "#8fb8de", "#34699a")
UNAUTHORIZED_COLOURS = ("#d62728", "#ff7f0e", "#b8004c", "#e6550d", "#a50f15", "#f03b20")


@dataclass(frozen=True)
class Series:
    label: str  # e.g. the issuer's name
    counts: tuple[int, ...]  # one per column
    alarming: bool = False  # drawn in a loud colour and marked in the legend


@dataclass(frozen=True)
class Legend:
    label: str
    colour: str
    alarming: bool
    total: int


def colours(series: Sequence[Series]) -> list[str]:
    calm, loud = 0, 0
    out = []
    for s in series:
        if s.alarming:
            out.append(UNAUTHORIZED_COLOURS[loud % len(UNAUTHORIZED_COLOURS)])
            loud += 1
        else:
            out.append(AUTHORIZED_COLOURS[calm % len(AUTHORIZED_COLOURS)])
            calm += 1
    return out


def legend(series: Sequence[Series]) -> list[Legend]:
    return [
        Legend(s.label, colour, s.alarming, sum(s.counts))
        for s, colour in zip(series, colours(series), strict=True)
    ]


def stacked_bars(columns: Sequence[str], series: Sequence[Series], *, title: str) -> Markup:
    """One bar per column (e.g. a month), stacked by series; the y axis is labelled with its maximum."""
    width, height = 760, 260
    left, right, top, bottom = 44, 10, 12, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.counts[i] for s in series) for i in range(len(columns))]
    peak = max(totals, default=0) or 1
    slot = plot_w / max(len(columns), 1)
    bar = max(1.0, slot * 0.8)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="11" fill="#444">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11" fill="#444">0</text>',
    ]
    fills = colours(series)
    label_every = max(1, len(columns) // 12)
    for i, column in enumerate(columns):
        x = left + i * slot + (slot - bar) / 2
        y = float(top + plot_h)
        for s, fill in zip(series, fills, strict=True):
            count = s.counts[i]
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            what = escape(f"{column}: {count} from {safe_text(s.label)}")
            marked = ' class="alarming"' if s.alarming else ""
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{fill}"{marked}>'
                f"<title>{what}</title></rect>"
            )
        if i % label_every == 0:
            tx, ty = x + bar / 2, top + plot_h + 14
            parts.append(
                f'<text x="{tx:.1f}" y="{ty}" font-size="10" fill="#444" text-anchor="end" '
                f'transform="rotate(-45 {tx:.1f} {ty})">{escape(column)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
