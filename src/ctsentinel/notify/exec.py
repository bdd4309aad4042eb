"""The exec channel: run a script with the event as JSON on stdin and certspotter's hook variables set.

Users coming from certspotter keep their hook scripts: the environment carries EVENT (discovered_cert,
malformed_cert, or error for a log-health event), SUMMARY, WATCH_ITEM, LOG_URI, ENTRY_INDEX, TBS_SHA256,
CERT_SHA256, PUBKEY_SHA256, SUBJECT_DN, ISSUER_DN, SERIAL, NOT_BEFORE/NOT_AFTER (and their _RFC3339 and
_UNIXTIME forms), JSON_FILENAME (the event JSON) and CERT_FILENAME (the PEM, when there is one), as
certspotter-script(8) defines them. Text taken from the certificate is passed through safe_text so that a
newline or an escape sequence in a DN cannot forge lines in whatever the script logs.

The command is a list run without a shell. It runs in its own process group, so on timeout the whole
group is killed; a non-zero exit is a failed delivery naming the first line of the script's stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

from ctsentinel.notify.base import Channel, DeliveryError, one_line
from ctsentinel.notify.events import AlertEvent, Event, HealthEvent, RevocationEvent
from ctsentinel.notify.render import summary
from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import parse_rfc3339, rfc3339
from ctsentinel.watch.severity import Severity

STDERR_LIMIT = 64 * 1024


def _time_variables(name: str, value: str | None) -> dict[str, str]:
    if value is None:
        return {}
    try:
        when = parse_rfc3339(value).astimezone(UTC)
    except ValueError:
        return {"VALIDITY_PARSE_ERROR": f"{name.lower()} {safe_text(value)!r} is not a time"}
    return {
        name: when.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        f"{name}_RFC3339": rfc3339(when),
        f"{name}_UNIXTIME": str(int(when.timestamp())),
    }


def _safe(value: str | None) -> str | None:
    return None if value is None else safe_text(value)


def hook_environment(event: Event, idempotency_key: str) -> dict[str, str]:
    """certspotter's hook variables for one event (file names are added by the channel)."""
    env: dict[str, str | None] = {"SUMMARY": summary(event), "CTSENTINEL_IDEMPOTENCY_KEY": idempotency_key}
    if isinstance(event, HealthEvent):
        env.update(
            EVENT="error",
            LOG_URI=safe_text(event.log),
            CTSENTINEL_PROBLEM=safe_text(event.problem),
            CTSENTINEL_DETAIL=safe_text(event.detail),
        )
        return {k: v for k, v in env.items() if v is not None}
    if isinstance(event, RevocationEvent):
        revoked = event.alert
        env.update(
            EVENT="revocation",
            CTSENTINEL_CHANGE=event.change,
            CTSENTINEL_DETAIL=safe_text(event.detail),
            CTSENTINEL_WATCH=safe_text(revoked.watch),
            CTSENTINEL_SEVERITY=revoked.severity.value,
            CTSENTINEL_ALERT_ID=str(revoked.id),
            ISSUER_DN=_safe(revoked.issuer),
            SERIAL=_safe(revoked.serial),
        )
        return {k: v for k, v in env.items() if v is not None}
    alert, certificate = event.alert, event.certificate
    first_entry = alert.entries[0] if alert.entries else None
    env.update(
        EVENT="malformed_cert" if alert.reason == "malformed" else "discovered_cert",
        CTSENTINEL_WATCH=safe_text(alert.watch),
        CTSENTINEL_SEVERITY=alert.severity.value,
        CTSENTINEL_ALERT_ID=str(alert.id),
        LOG_URI=None if first_entry is None else safe_text(first_entry.log),
        ENTRY_INDEX=None if first_entry is None else str(first_entry.index),
        TBS_SHA256=None if certificate is None else certificate.tbs_sha256,
        CERT_SHA256=alert.sha256[0] if alert.sha256 else None,
        PUBKEY_SHA256=None if certificate is None else certificate.subject_spki_sha256,
        SUBJECT_DN=None if certificate is None else _safe(certificate.subject),
        ISSUER_DN=_safe(alert.issuer),
        SERIAL=_safe(alert.serial),
        WATCH_ITEM=_safe(alert.matched[0]) if alert.matched else None,
    )
    out = {k: v for k, v in env.items() if v is not None}
    out.update(_time_variables("NOT_BEFORE", alert.not_before))
    out.update(_time_variables("NOT_AFTER", alert.not_after))
    return out


class ExecChannel(Channel):
    kind = "exec"

    def __init__(
        self,
        key: str,
        command: Sequence[str],
        *,
        timeout: float = 30.0,
        concurrency: int = 1,
        min_severity: Severity = Severity.LOW,
        watches: Sequence[str] = (),
    ) -> None:
        super().__init__(key, min_severity, watches)
        self.command = list(command)
        self.timeout = timeout
        self.concurrency = concurrency

    def destination(self) -> tuple[str, tuple[str, ...]]:
        # The arguments may hold a token: only the program's name is shown.
        return Path(self.command[0]).name, tuple(self.command)

    async def deliver(self, event: Event, idempotency_key: str) -> None:
        body = json.dumps(event.to_json(), ensure_ascii=False).encode("utf-8")
        env = dict(os.environ)
        env.update(hook_environment(event, idempotency_key))
        with tempfile.TemporaryDirectory(prefix="ctsentinel-hook-") as folder:
            json_path = Path(folder) / "event.json"
            json_path.write_bytes(body)
            env["JSON_FILENAME"] = str(json_path)
            certificate = event.certificate if isinstance(event, AlertEvent) else None
            if certificate is not None and certificate.pem:
                cert_path = Path(folder) / "cert.pem"
                cert_path.write_text(certificate.pem, encoding="ascii")
                env["CERT_FILENAME"] = str(cert_path)
            await self._run(body, env)

    async def _run(self, body: bytes, env: dict[str, str]) -> None:
        name = self.command[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group: a timeout kills the script's children too
            )
        except OSError as exc:
            raise DeliveryError(f"exec {name}: cannot run: {exc.strerror or exc}") from None
        try:
            _, stderr = await asyncio.wait_for(process.communicate(body), self.timeout)
        except TimeoutError:
            self._kill(process.pid)
            await process.wait()
            raise DeliveryError(f"exec {name}: still running after {self.timeout:g}s; killed") from None
        except BaseException:
            self._kill(process.pid)  # cancelled (shutdown): leave no script behind
            raise
        if process.returncode != 0:
            lines = stderr[:STDERR_LIMIT].decode("utf-8", "replace").strip().splitlines()
            why = f": {one_line(safe_text(lines[0]), 200)}" if lines else ""
            code = process.returncode
            status = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            raise DeliveryError(f"exec {name}: {status}{why}")

    @staticmethod
    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
