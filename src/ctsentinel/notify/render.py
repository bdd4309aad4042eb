"""Human-readable text of an event, for terminals, mail bodies and subjects.

Every value that came out of a certificate (names, issuer, subject, serial) is attacker-controlled, so
everything goes through terminal.safe_text: control characters, ANSI escapes and bidi overrides are shown
as visible escapes instead of being obeyed.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctsentinel.notify.events import AlertEvent, Event, HealthEvent, RevocationEvent
from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import rfc3339


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(safe_text(str(item)) for item in value) or "-"
    return safe_text(str(value))


def summary(event: Event) -> str:
    """One line: what happened and to what (matches what certspotter calls SUMMARY)."""
    if isinstance(event, HealthEvent):
        return f"log {_text(event.log)}: {_text(event.problem)}"
    if isinstance(event, RevocationEvent):
        alert = event.alert
        what = "revoked" if event.change == "revoked" else "revocation contradicted"
        serial, watch = _text(alert.serial), _text(alert.watch)
        return f"{_text(alert.severity)} {what}: serial {serial} of alert #{alert.id} (watch {watch})"
    alert = event.alert
    matched = alert.matched or alert.dns_names or alert.ip_addresses or ("?",)
    return (
        f"{_text(alert.severity)} {_text(alert.reason)}: certificate for "
        f"{_text(matched[0])} (watch {_text(alert.watch)})"
    )


def _block(title: str, rows: Sequence[tuple[str, object]]) -> list[str]:
    return [title] + [f"  {label + ':':<14}{_text(value)}" for label, value in rows]


def text_block(event: Event) -> str:
    """A readable multi-line block, ending in a newline."""
    if isinstance(event, HealthEvent):
        rows: list[tuple[str, object]] = [
            ("log", event.log),
            ("problem", event.problem),
            ("detail", event.detail),
            ("severity", event.severity),
            ("time", rfc3339(event.time)),
        ]
        return "\n".join(_block(f"ctsentinel log health: {summary(event)}", rows)) + "\n"
    if isinstance(event, RevocationEvent):
        alert = event.alert
        rows = [
            ("change", event.change),
            ("detail", event.detail),
            ("alert", f"#{alert.id}"),
            ("watch", alert.watch),
            ("issuer", alert.issuer),
            ("serial", alert.serial),
            ("names", [*alert.dns_names, *alert.ip_addresses]),
            ("time", rfc3339(event.time)),
        ]
        return "\n".join(_block(f"ctsentinel revocation: {summary(event)}", rows)) + "\n"
    return "\n".join(_alert_lines(event)) + "\n"


def _alert_lines(event: AlertEvent) -> list[str]:
    alert = event.alert
    rows: list[tuple[str, object]] = [
        ("watch", alert.watch),
        ("reason", alert.reason),
        ("severity", alert.severity),
        ("matched", alert.matched),
        ("dns names", alert.dns_names),
        ("ip addresses", alert.ip_addresses),
        ("issuer", alert.issuer),
        ("issuer key", alert.issuer_spki_sha256),
        ("serial", alert.serial),
        ("valid", f"{alert.not_before or '-'} to {alert.not_after or '-'}"),
        ("sha256", alert.sha256),
        ("first seen", rfc3339(alert.first_seen)),
    ]
    lines = _block(f"ctsentinel alert #{_text(alert.id)}: {summary(event)}", rows)
    for entry in alert.entries:
        lines.append(f"  {'seen in:':<14}{_text(entry.log)} #{entry.index} ({entry.type.json_name})")
    return lines
