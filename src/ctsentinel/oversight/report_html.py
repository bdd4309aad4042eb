"""A CA report as one self-contained HTML page: inline CSS and SVG charts, no script, nothing fetched.

At a glance: how many of the CA's issuances CA watches flagged and for what, month by month beside all
its issuance (flagged months stand out in red), then what became of the flagged ones (revoked, and how
long after they were logged), lint errors by code, and every flagged issuance. Every text that came out
of a certificate is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from ctsentinel.oversight.report import CaReport
from ctsentinel.store import FlaggedIssuance
from ctsentinel.timefmt import duration, rfc3339

_RED, _GREY, _GREEN, _AMBER, _BLUE = "#c62828", "#b0bec5", "#2e7d32", "#ef8f00", "#607d8b"
_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1c2430; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.1em; } h2 { font-size: 1.15em; margin-top: 2em; }
.key { color: #55606e; font-family: ui-monospace, monospace; font-size: 0.85em; word-break: break-all; }
.headline { font-size: 1.35em; margin: 1em 0; padding: 0.8em 1em; border-left: 6px solid #c62828;
            background: #fdecea; }
.headline.calm { border-color: #2e7d32; background: #edf7ee; }
.numbers { display: flex; gap: 1.2em; flex-wrap: wrap; }
.number { border: 1px solid #d5dbe1; border-radius: 6px; padding: 0.5em 1em; min-width: 8em; }
.number b { display: block; font-size: 1.6em; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { text-align: left; padding: 0.3em 0.5em; border-bottom: 1px solid #e3e7eb; vertical-align: top; }
th { background: #f3f5f7; }
td.flags { color: #c62828; } .mono { font-family: ui-monospace, monospace; word-break: break-all; }
svg text { font: 11px system-ui, sans-serif; fill: #1c2430; }
.legend span { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em; }
"""


def render(report: CaReport, *, generated: datetime | None = None) -> str:
    data = report.to_json()
    issuer = data["issuer"] or "(issuer without a name)"
    flagged = report.flagged
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing loads from anywhere: a page about a CA must not phone home, or run anything.
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        f"<title>CA report: {escape(issuer)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(issuer)}</h1>",
        f'<div class="key">issuer key sha256:{escape(report.key.spki_sha256)}</div>',
        _headline(report),
        _numbers(report),
        "<h2>Issuance per month (by notBefore)</h2>",
        _months_chart(data["by_month"], report.activity.flagged_by_month),
        "<h2>Flagged issuances by flag</h2>",
        _bars([(flag, count, _RED) for flag, count in data["findings"].items()], unit="issuances"),
        "<h2>Revocation</h2>",
        _revocation(report),
        "<h2>Lint errors by code</h2>",
        _lint(report),
        f"<h2>Flagged issuances ({len(flagged)})</h2>",
        _flagged_table(flagged),
        f'<p class="key">ctsentinel ca report, {escape(rfc3339(generated) if generated else "")}</p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _headline(report: CaReport) -> str:
    flagged, total = len(report.flagged), report.issuances
    if not flagged:
        return f'<div class="headline calm">No flagged issuance among {total:,} issuances.</div>'
    counts = {k: v for k, v in report.findings.items() if v}
    what = ", ".join(f"{v:,} {escape(k)}" for k, v in counts.items())
    revoked = sum(1 for f in report.flagged if f.revocation is not None and f.revocation.status == "revoked")
    share = 100.0 * flagged / total if total else 0.0
    return (
        f'<div class="headline"><b>{flagged:,} of {total:,} issuances ({share:.1f}%) flagged</b>: {what}. '
        f"{revoked:,} of them revoked.</div>"
    )


def _numbers(report: CaReport) -> str:
    data = report.to_json()
    cells = [
        ("issuances", data["issuances"]),
        ("naming DNS names", data["identifiers"]["dns"]),
        ("naming IP addresses", data["identifiers"]["ip"]),
        ("flagged", len(report.flagged)),
        ("linted", report.activity.linted),
        ("revoked", data["revocation"]["revoked"]),
    ]
    return (
        '<div class="numbers">'
        + "".join(f'<div class="number"><b>{value:,}</b>{escape(label)}</div>' for label, value in cells)
        + "</div>"
    )


def _months_chart(by_month: dict[str, int], flagged: dict[str, int]) -> str:
    months = _month_range([*by_month, *flagged])
    if not months:
        return "<p>No issuance with a notBefore.</p>"
    width, height, left, bottom, top = 1060, 240, 40, 40, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([by_month.get(m, 0) for m in months] + [1])
    step = plot_w / len(months)
    bar = max(1.0, step * 0.8)
    shapes = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#90a4ae"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak:,}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    every = max(1, len(months) // 12)
    for i, month in enumerate(months):
        x = left + i * step + (step - bar) / 2
        total, red = by_month.get(month, 0), flagged.get(month, 0)
        h = plot_h * total / peak
        shapes.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{_GREY}">'
            f"<title>{month}: {total:,} issuances, {red:,} flagged</title></rect>"
        )
        if red:
            # Flagged months stand out even when their share is tiny: at least a visible sliver, in red.
            rh = max(4.0, plot_h * red / peak)
            shapes.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - rh:.1f}" width="{bar:.1f}" height="{rh:.1f}" '
                f'fill="{_RED}"><title>{month}: {red:,} flagged</title></rect>'
            )
        if i % every == 0:
            shapes.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{month}</text>'
            )
    legend = (
        f'<div class="legend"><span style="background:{_GREY}"></span>all issuances'
        f'<span style="background:{_RED}"></span>flagged by a CA watch</div>'
    )
    return _svg(width, height, shapes, "Issuance per month") + legend


def _month_range(months: Sequence[str]) -> list[str]:
    valid = sorted({m for m in months if len(m) == 7 and m[4] == "-" and m[:4].isdigit() and m[5:].isdigit()})
    if not valid:
        return []
    year, month = int(valid[0][:4]), int(valid[0][5:])
    last = valid[-1]
    out: list[str] = []
    while f"{year:04d}-{month:02d}" <= last and len(out) < 600:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _bars(rows: Sequence[tuple[str, int, str]], *, unit: str) -> str:
    if not rows:
        return "<p>Nothing to show.</p>"
    width, row_h, left = 1060, 26, 230
    peak = max([count for _, count, _ in rows] + [1])
    shapes = []
    for i, (label, count, color) in enumerate(rows):
        y = i * row_h + 4
        w = (width - left - 90) * count / peak
        shapes.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        shapes.append(
            f'<rect x="{left}" y="{y}" width="{max(w, 1.5 if count else 0):.1f}" height="{row_h - 8}" '
            f'fill="{color}"><title>{escape(label)}: {count:,} {unit}</title></rect>'
        )
        shapes.append(f'<text x="{left + w + 6:.1f}" y="{y + 14}">{count:,}</text>')
    return _svg(width, len(rows) * row_h + 8, shapes, unit)


def _revocation(report: CaReport) -> str:
    data = report.to_json()["revocation"]
    colors = {"revoked": _RED, "good": _GREEN, "unknown": _AMBER, "unchecked": _GREY}
    chart = _bars(
        [(k, data[k], colors[k]) for k in ("revoked", "good", "unknown", "unchecked")], unit="issuances"
    )
    delays = sorted(d for d in (f.revoked_after for f in report.flagged) if d is not None)
    flagged_revoked = sum(
        1 for f in report.flagged if f.revocation is not None and f.revocation.status == "revoked"
    )
    text = f"<p>{flagged_revoked:,} of {len(report.flagged):,} flagged issuances are revoked"
    if delays:
        median = delays[len(delays) // 2]
        text += (
            f"; revoked {_span(delays[0])} to {_span(delays[-1])} after they were first logged "
            f"(median {_span(median)})"
        )
    return chart + text + ".</p>"


def _span(seconds: float) -> str:
    if seconds < 0:
        return "before it was logged"
    days = seconds / 86400
    return f"{days:,.0f} days" if days >= 2 else duration(seconds)


def _lint(report: CaReport) -> str:
    lint = report.activity.lint
    linted = report.activity.linted
    if not lint:
        return f"<p>No lint error in the {linted:,} linted issuances.</p>"
    rows = "".join(f'<tr><td class="mono">{escape(code)}</td><td>{n:,}</td></tr>' for code, n in lint.items())
    return (
        f"<p>pkilint's CA/B Forum TLS errors, in issuances of the {linted:,} linted (CA watches lint every "
        "certificate of a CA they name, and what the cheap flags flag).</p>"
        f"<table><tr><th>code</th><th>issuances</th></tr>{rows}</table>"
    )


def _flagged_table(flagged: Sequence[FlaggedIssuance]) -> str:
    if not flagged:
        return "<p>None.</p>"
    rows = []
    for item in flagged:
        state = item.revocation
        if state is None or state.status is None:
            revocation = "unchecked"
        elif state.status == "revoked":
            when = "" if state.revoked_at is None else rfc3339(state.revoked_at)
            after = "" if item.revoked_after is None else f", {_span(item.revoked_after)} after logged"
            revocation = f"revoked {when} ({state.reason or 'no reason'}{after})"
        else:
            revocation = state.status
        if state is not None and state.contradiction:
            revocation += "; the OCSP responder said good"
        names = ", ".join([*item.ip_addresses, *item.dns_names])
        rows.append(
            "<tr>"
            f'<td class="mono">{escape(item.serial or "")}</td>'
            f"<td>{escape(names)}</td>"
            f'<td class="flags">{escape(", ".join(item.findings))}</td>'
            f"<td>{escape((item.not_before or '')[:10])}</td>"
            f"<td>{escape(rfc3339(item.logged_at) if item.logged_at else '')}</td>"
            f"<td>{escape(revocation)}</td>"
            "</tr>"
        )
    columns = ("serial", "names", "flags", "notBefore", "first logged", "revocation")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _svg(width: int, height: int, shapes: Sequence[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px">'
        + "".join(shapes)
        + "</svg>"
    )
