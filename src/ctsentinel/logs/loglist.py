"""CT log lists: Chrome's v3 schema (logs and tiled_logs) and Apple's v5, parsed into LogInfo.

Both publishers use the same shape: operators[] each with logs[] (RFC 6962, `url`) and tiled_logs[]
(static-ct-api, `monitoring_url` and `submission_url`), every log with a base64 `key`, its `log_id`, `mmd`
and a `state` object whose single key is the state name. A log whose log_id is not the SHA-256 of its
key, or whose entry is broken, is skipped with a warning: one bad entry must not cost every other log.
So is a log whose URL a monitor should not request (logs.urls): credentials, a query or a fragment, and,
unless the list was given by path, a loopback, private, link-local or reserved host. A document that is
not a log list at all (not JSON, nested past the parser's depth, no operators) is a LogListError naming
the source.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from ctsentinel.ct.errors import CTError
from ctsentinel.ct.signatures import LogKey
from ctsentinel.errors import UserError
from ctsentinel.logs.http import HttpClient, LogHTTPError
from ctsentinel.logs.urls import url_problem
from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import parse_rfc3339

log = logging.getLogger("ctsentinel.logs")

STATES = ("usable", "qualified", "readonly", "retired", "rejected", "pending")
# Chrome's all_logs_list carries logs that never applied (test and staging logs) with no state at all.
NO_STATE = "unknown"
DEFAULT_STATES = ("usable", "qualified", "readonly")
KINDS = ("rfc6962", "static-ct")
BUNDLED = ("chrome", "apple")

Warn = Callable[[str], None]


class LogListError(UserError):
    """A log list that cannot be used at all: unreadable, not JSON, or not a log list."""


@dataclass(frozen=True)
class LogInfo:
    url: str  # base URL ending in "/": RFC 6962 log URL, or the static-ct monitoring prefix
    kind: str  # "rfc6962" | "static-ct"
    log_id: bytes
    key: LogKey
    description: str
    operator: str
    state: str
    mmd: int  # maximum merge delay, seconds
    submission_url: str | None = None
    # A readonly log's final tree head (Chrome lists it): nothing past it will ever be logged.
    final_tree_size: int | None = None
    final_root_hash: bytes | None = None
    # A sharded log's temporal interval ends here: it holds only certificates that expire before it.
    temporal_end: datetime | None = None


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _state(entry: dict[str, Any], where: str) -> tuple[str, int | None, bytes | None]:
    state = entry.get("state")
    if state is None or state == {}:
        return NO_STATE, None, None
    if not isinstance(state, dict) or len(state) != 1:
        raise ValueError(f"{where}: 'state' must be an object with exactly one state")
    ((name, detail),) = state.items()
    if name not in STATES:
        raise ValueError(f"{where}: unknown state {name!r}")
    final_size = final_root = None
    head = detail.get("final_tree_head") if isinstance(detail, dict) else None
    if isinstance(head, dict):
        size, root = head.get("tree_size"), head.get("sha256_root_hash")
        if type(size) is int and size >= 0 and isinstance(root, str):
            try:
                decoded = base64.b64decode(root, validate=True)
            except binascii.Error:
                decoded = b""
            if len(decoded) == 32:
                final_size, final_root = size, decoded
    return name, final_size, final_root


def _string(entry: dict[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {name!r} must be a non-empty string")
    return value


def _http_url(entry: dict[str, Any], name: str, where: str, internal_hosts: bool) -> str:
    value = _string(entry, name, where)
    problem = url_problem(value, internal_hosts=internal_hosts)
    if problem is not None:
        raise ValueError(f"{where}: {name} {value[:80]!r} {problem}")
    return _with_slash(value)


def _log(entry: object, kind: str, operator: str, where: str, internal_hosts: bool) -> LogInfo:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: not an object")
    description = entry.get("description")
    if isinstance(description, str) and description:
        where = f"{where} ({description[:80]})"
    else:
        description = ""
    try:
        key = LogKey.from_base64(_string(entry, "key", where))
    except CTError as exc:
        raise ValueError(f"{where}: key: {exc}") from None
    if _string(entry, "log_id", where) != base64.b64encode(key.log_id).decode("ascii"):
        raise ValueError(f"{where}: log_id is not the SHA-256 of its key")
    mmd = entry.get("mmd", 86400)
    if type(mmd) is not int or mmd < 0:
        raise ValueError(f"{where}: mmd must be a non-negative integer")
    state, final_size, final_root = _state(entry, where)
    if kind == "rfc6962":
        url, submission = _http_url(entry, "url", where, internal_hosts), None
    else:
        url = _http_url(entry, "monitoring_url", where, internal_hosts)
        submission = (
            _http_url(entry, "submission_url", where, internal_hosts) if "submission_url" in entry else None
        )
    return LogInfo(
        url=url,
        kind=kind,
        log_id=key.log_id,
        key=key,
        description=description,
        operator=operator,
        state=state,
        mmd=mmd,
        submission_url=submission,
        final_tree_size=final_size,
        final_root_hash=final_root,
        temporal_end=_temporal_end(entry),
    )


def _temporal_end(entry: dict[str, Any]) -> datetime | None:
    """The end of the log's temporal interval; None when it has none (or one that does not parse: the
    interval only narrows what `backfill` reads again, and reading a log too many is harmless)."""
    interval = entry.get("temporal_interval")
    end = interval.get("end_exclusive") if isinstance(interval, dict) else None
    if not isinstance(end, str):
        return None
    try:
        return parse_rfc3339(end)
    except ValueError:
        return None


def parse_log_list(
    data: bytes, source: str, *, warn: Warn | None = None, internal_hosts: bool = False
) -> list[LogInfo]:
    """Every well-formed log of a Chrome v3 or Apple v5 list, in document order (logs before tiled_logs
    within each operator). Broken log entries are skipped with a warning through `warn` (default: the
    "ctsentinel.logs" logger), as are logs on loopback, private or local hosts unless internal_hosts (a
    list the user gave by path); a document that is not a log list raises LogListError."""
    warn = warn or log.warning
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        line = safe_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise LogListError(f"log list {source}: not JSON ({line[:200]})") from None
    except RecursionError:
        raise LogListError(f"log list {source}: not a log list (JSON nested too deeply)") from None
    operators = document.get("operators") if isinstance(document, dict) else None
    if not isinstance(operators, list):
        raise LogListError(f"log list {source}: not a Chrome v3 or Apple v5 log list (no 'operators' array)")
    logs: list[LogInfo] = []
    for number, operator in enumerate(operators):
        if not isinstance(operator, dict):
            raise LogListError(f"log list {source}: operators[{number}] is not an object")
        name = operator.get("name")
        name = name if isinstance(name, str) else f"operator #{number}"
        for section, kind in (("logs", "rfc6962"), ("tiled_logs", "static-ct")):
            entries = operator.get(section, [])
            if not isinstance(entries, list):
                raise LogListError(f"log list {source}: operator {name!r}: {section!r} is not an array")
            for index, entry in enumerate(entries):
                where = f"operator {name[:80]!r} {section}[{index}]"
                try:
                    logs.append(_log(entry, kind, name, where, internal_hosts))
                except ValueError as exc:
                    warn(safe_text(f"log list {source}: skipping {exc}"))
    return logs


def bundled_log_list(name: str) -> bytes:
    """The snapshot of the "chrome" or "apple" list shipped in ctsentinel/data (see its PROVENANCE.md)."""
    if name not in BUNDLED:
        raise LogListError(f"no bundled log list {name!r} (bundled: {', '.join(BUNDLED)})")
    return resources.files("ctsentinel").joinpath("data", f"{name}.json").read_bytes()


def is_downloaded(source: str) -> bool:
    """Whether a [logs] list setting names a list fetched over HTTP(S)."""
    return source.startswith(("https://", "http://"))


async def load_log_list(source: str, http: HttpClient, *, warn: Warn | None = None) -> list[LogInfo]:
    """The logs of "chrome" or "apple" (bundled snapshots), a local path, or an http(s) URL. Only a list
    given by path may name loopback, private or local hosts."""
    local = False
    if source in BUNDLED:
        data = bundled_log_list(source)
    elif is_downloaded(source):
        try:
            data = await http.get(source)
        except LogHTTPError as exc:
            raise LogListError(f"log list {exc}") from None
    else:
        try:
            data = Path(source).expanduser().read_bytes()
        except OSError as exc:
            raise LogListError(f"log list {source}: {exc.strerror or exc}") from None
        local = True
    return parse_log_list(data, source, warn=warn, internal_hosts=local)


def _normal(url: str) -> str:
    return _with_slash(url.strip()).lower()


def select_logs(
    logs: Sequence[LogInfo],
    states: Sequence[str] = DEFAULT_STATES,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
) -> list[LogInfo]:
    """The logs to monitor: in one of `states`, of one of `kinds`,
    among `include` if any is given, never in `exclude`; URLs compare without case or trailing slash and
    match the monitoring or the submission URL.

    One LogInfo per log_id: a log listed both as RFC 6962 and as tiled (as the test log is) is read through
    static-ct-api, whose immutable tiles cost the log less to serve; pass kinds=("rfc6962",) to prefer the
    other.
    """
    wanted = {_normal(u) for u in include}
    unwanted = {_normal(u) for u in exclude}
    chosen: dict[bytes, LogInfo] = {}
    for info in logs:
        urls = {_normal(info.url)} | ({_normal(info.submission_url)} if info.submission_url else set())
        if info.kind not in kinds or urls & unwanted:
            continue
        if wanted and not urls & wanted:
            continue
        if info.state not in states:
            continue
        previous = chosen.get(info.log_id)
        if previous is None or (previous.kind != "static-ct" and info.kind == "static-ct"):
            chosen[info.log_id] = info
    return list(chosen.values())


class LogListSource:
    """A log list that is reloaded periodically; a failed reload keeps the last good list (the caller says
    so: last_error is set)."""

    def __init__(self, source: str, http: HttpClient, *, warn: Warn | None = None) -> None:
        self.source = source
        self._http = http
        self._warn = warn
        self.logs: list[LogInfo] = []
        self.last_error: str | None = None
        self.loaded = False

    async def refresh(self) -> list[LogInfo]:
        """Reload; on failure record the one-line error and return the previous list (raises only if no
        list was ever loaded, so that a first start with a broken list fails loudly)."""
        try:
            logs = await load_log_list(self.source, self._http, warn=self._warn)
        except LogListError as exc:
            self.last_error = str(exc)
            if not self.loaded:
                raise
            return self.logs
        self.logs, self.last_error, self.loaded = logs, None, True
        return logs
