"""Human-readable text of an event, for terminals, mail bodies and subjects.

Every value that came out of a certificate (names, issuer, subject, serial) is attacker-controlled, so
everything goes through terminal.safe_text: control characters, ANSI escapes and bidi overrides are shown
as visible escapes instead of being obeyed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ctsentinel.notify.base import is_health
from ctsentinel.terminal import safe_text


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(safe_text(str(item)) for item in value) or "-"
    return safe_text(str(value))


def summary(event: Mapping[str, Any]) -> str:
    """One line: what happened and to what (matches what certspotter calls SUMMARY)."""
    if is_health(event):
        return f"log {_text(event.get('log'))}: {_text(event.get('problem'))}"
    matched = event.get("matched") or event.get("dns_names") or event.get("ip_addresses") or ["?"]
    return (
        f"{_text(event.get('severity'))} {_text(event.get('reason'))}: certificate for "
        f"{_text(matched[0])} (watch {_text(event.get('watch'))})"
    )


def text_block(event: Mapping[str, Any]) -> str:
    """A readable multi-line block, ending in a newline."""
    if is_health(event):
        rows = [
            ("log", event.get("log")),
            ("problem", event.get("problem")),
            ("detail", event.get("detail")),
            ("severity", event.get("severity")),
            ("time", event.get("time")),
        ]
        title = f"ctsentinel log health: {summary(event)}"
    else:
        entries = [
            f"{_text(e.get('log'))} #{_text(e.get('index'))} ({_text(e.get('type'))})"
            for e in event.get("entries") or []
            if isinstance(e, Mapping)
        ]
        rows = [
            ("watch", event.get("watch")),
            ("reason", event.get("reason")),
            ("severity", event.get("severity")),
            ("matched", event.get("matched")),
            ("dns names", event.get("dns_names")),
            ("ip addresses", event.get("ip_addresses")),
            ("issuer", event.get("issuer")),
            ("issuer key", event.get("issuer_spki_sha256")),
            ("serial", event.get("serial")),
            ("valid", f"{event.get('not_before') or '-'} to {event.get('not_after') or '-'}"),
            ("sha256", event.get("sha256")),
            ("first seen", event.get("first_seen")),
        ]
        title = f"ctsentinel alert #{_text(event.get('id'))}: {summary(event)}"
        lines = [title] + [f"  {label + ':':<14}{_text(value)}" for label, value in rows]
        lines += [f"  {'seen in:':<14}{entry}" for entry in entries]
        return "\n".join(lines) + "\n"
    return "\n".join([title] + [f"  {label + ':':<14}{_text(value)}" for label, value in rows]) + "\n"
