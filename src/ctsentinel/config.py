"""The TOML config (DESIGN.md section 4), validated on load with one-line errors that name the key.

Everything a config can say is declared here, so an unknown key (a typo such as `authorised_issuers`) is an
error rather than a silently ignored setting: a monitor that quietly watches nothing is the failure this
project exists to prevent.
"""

from __future__ import annotations

import ipaddress
import math
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import idna

from ctsentinel.errors import UserError
from ctsentinel.monitor.settings import Keep, LogsSettings, MonitorSettings, Start
from ctsentinel.notify.settings import NOTIFY_KINDS, ChannelSettings
from ctsentinel.watch.ca_policy import CaFlag, LintIgnore, RevocationScope
from ctsentinel.watch.severity import Severity
from ctsentinel.web.settings import DEFAULT_TIME_LIMIT, WebSettings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SEVERITIES = tuple(s.value for s in Severity.alerting())  # what min_severity may name
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ConfigError(UserError):
    """A config problem, reported as `FILE: where: what`."""


@dataclass(frozen=True)
class IssuerRule:
    """An authorized issuer: by SHA-256 of its SubjectPublicKeyInfo, or by organization name."""

    spki_sha256: str | None = None
    organization: str | None = None

    def text(self) -> str:
        return f"sha256:{self.spki_sha256}" if self.spki_sha256 else str(self.organization)


@dataclass(frozen=True)
class WatchConfig:
    name: str
    domains: tuple[str, ...] = ()  # A-labels, lower case, no trailing dot; "*.x" = subdomains only
    ips: tuple[IPNetwork, ...] = ()  # single addresses are /32 or /128 networks
    authorized_issuers: tuple[IssuerRule, ...] = ()
    authorized_keys: tuple[str, ...] = ()  # hex SHA-256 of subscriber SPKIs
    approved_certificates: tuple[str, ...] = ()  # hex TBS hashes approved one by one


@dataclass(frozen=True)
class CaWatchConfig:
    """A [[ca_watch]]: what the CAs it selects issue (ctsentinel.watch.ca_policy.CaWatchSpec)."""

    name: str
    issuers: tuple[IssuerRule, ...] = ()  # empty when every_ca
    every_ca: bool = False  # issuers = ["*"]
    flags: tuple[CaFlag, ...] = ()  # empty: every flag
    ignore_lint: tuple[LintIgnore, ...] = ()  # lint codes (or code@field) lint_error does not count
    revocation: RevocationScope = RevocationScope.ALERTS  # "all": check every certificate of its CAs


@dataclass(frozen=True)
class Config:
    path: Path
    database: str
    logs: LogsSettings
    monitor: MonitorSettings
    watches: tuple[WatchConfig, ...]
    notify: tuple[ChannelSettings, ...]
    ca_watches: tuple[CaWatchConfig, ...] = ()
    web: WebSettings = field(default_factory=WebSettings)


class _Reader:
    """Pops typed values out of one TOML table and reports what is left over as unknown keys.

    Hand-written rather than msgspec (or pydantic) over tomllib: a prototype with msgspec Structs
    (forbid_unknown_fields, Meta(ge=...)) needed a translator of its English error text into these messages
    (paths to "[[watch]] 'name'", its type names to ours), came to 104 lines against this reader and the
    reading code it would replace, and still reported the first problem in file order instead of type
    errors before the alphabetically first unknown key.
    """

    def __init__(self, file: Path, where: str, table: Any) -> None:
        self.file, self.where = file, where
        if not isinstance(table, dict):
            self.fail(f"must be a table, not {type(table).__name__}")
        self.table = dict(table)

    def fail(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.file}: {self.where}{': ' if self.where else ''}{message}")

    def _take(self, key: str, kinds: tuple[type, ...], kind_name: str, default: Any) -> Any:
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.fail(f"{key} must be {kind_name}, not {type(value).__name__}")
        return value

    def string(self, key: str, default: str | None = None) -> Any:
        return self._take(key, (str,), "a string", default)

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = float(self._take(key, (int, float), "a number", default))
        # TOML has nan and inf: a nan passes every comparison (rate limits off, a busy poll loop).
        if not math.isfinite(value):
            self.fail(f"{key} must be a finite number, not {value:g}")
        if value < minimum:
            self.fail(f"{key} must be at least {minimum:g}")
        return value

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        value = int(self._take(key, (int,), "an integer", default))
        if value < minimum:
            self.fail(f"{key} must be at least {minimum}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return bool(self._take(key, (bool,), "true or false", default))

    def strings(self, key: str) -> list[str]:
        values = self._take(key, (list,), "a list of strings", [])
        for position, value in enumerate(values):
            if not isinstance(value, str):
                self.fail(f"{key}[{position}] must be a string, not {type(value).__name__}")
        return list(values)

    def done(self) -> None:
        if self.table:
            self.fail(f"unknown key {sorted(self.table)[0]!r}")


def normalize_domain(text: str) -> str:
    """A watched domain as an A-label in lower case; raises ValueError for what cannot be a DNS name."""
    name = text.strip().rstrip(".").lower()
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    if not name or any(c.isspace() for c in name) or "/" in name:
        raise ValueError("not a DNS name")
    if not name.isascii():
        name = idna.encode(name, uts46=True).decode("ascii")
    for label in name.split("."):
        if not label or len(label) > 63 or not re.fullmatch(r"[a-z0-9_-]+", label):
            raise ValueError(f"bad label {label!r}")
    return ("*." if wildcard else "") + name


def _issuer_rule(reader: _Reader, key: str, position: int, text: str) -> IssuerRule:
    if text.lower().startswith("sha256:"):
        digest = text[7:].strip().lower().replace(":", "")
        if not _HEX64.match(digest):
            reader.fail(f"{key}[{position}] {text!r} is not sha256: followed by 64 hex digits")
        return IssuerRule(spki_sha256=digest)
    if not text.strip():
        reader.fail(f"{key}[{position}] is empty")
    return IssuerRule(organization=text.strip())


def _hashes(reader: _Reader, key: str) -> tuple[str, ...]:
    out = []
    for position, text in enumerate(reader.strings(key)):
        digest = text.lower().removeprefix("sha256:").replace(":", "")
        if not _HEX64.match(digest):
            reader.fail(f"{key}[{position}] {text!r} is not sha256: followed by 64 hex digits")
        out.append(digest)
    return tuple(out)


def _watch(file: Path, position: int, table: Any) -> WatchConfig:
    reader = _Reader(file, f"[[watch]] #{position + 1}", table)
    name = reader.string("name")
    if not name:
        reader.fail("name is required")
    reader.where = f"[[watch]] {name!r}"
    domains = []
    for index, text in enumerate(reader.strings("domains")):
        try:
            domains.append(normalize_domain(text))
        except (ValueError, idna.IDNAError) as exc:
            reader.fail(f"domains[{index}] {text!r} is not a domain name ({exc})")
    networks: list[IPNetwork] = []
    for index, text in enumerate(reader.strings("ips")):
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError as exc:
            reader.fail(f"ips[{index}] {text!r} is not an IP address or CIDR range ({exc})")
    issuers = tuple(
        _issuer_rule(reader, "authorized_issuers", index, text)
        for index, text in enumerate(reader.strings("authorized_issuers"))
    )
    watch = WatchConfig(
        name=name,
        domains=tuple(dict.fromkeys(domains)),
        ips=tuple(dict.fromkeys(networks)),
        authorized_issuers=issuers,
        authorized_keys=_hashes(reader, "authorized_keys"),
        approved_certificates=_hashes(reader, "approved_certificates"),
    )
    reader.done()
    if not watch.domains and not watch.ips:
        reader.fail("watches nothing: give domains or ips")
    return watch


_FLAG_NAMES = ", ".join(flag.value for flag in CaFlag)


def _ca_watch(file: Path, position: int, table: Any) -> CaWatchConfig:
    reader = _Reader(file, f"[[ca_watch]] #{position + 1}", table)
    name = reader.string("name")
    if not name:
        reader.fail("name is required")
    reader.where = f"[[ca_watch]] {name!r}"
    texts = reader.strings("issuers")
    if not texts:
        reader.fail('issuers is required: CA key hashes (sha256:HEX), organizations, or ["*"] for every CA')
    every_ca = "*" in (t.strip() for t in texts)
    if every_ca and len(texts) > 1:
        reader.fail('issuers: "*" already selects every CA; give it alone')
    issuers = () if every_ca else tuple(_issuer_rule(reader, "issuers", i, t) for i, t in enumerate(texts))
    flags: list[CaFlag] = []
    if "flag" in reader.table:
        names = reader.strings("flag")
        if not names:
            reader.fail(f"flag = [] flags nothing; leave flag out for every flag ({_FLAG_NAMES})")
        for index, text in enumerate(names):
            try:
                flags.append(CaFlag(text))
            except ValueError:
                reader.fail(f"flag[{index}] {text!r} is not one of {_FLAG_NAMES}")
    ignored = []
    for index, text in enumerate(reader.strings("ignore_lint")):
        try:
            ignored.append(LintIgnore.parse(text))
        except ValueError as exc:
            reader.fail(f"ignore_lint[{index}]: {exc}")
    revocation = reader.string("revocation", RevocationScope.ALERTS.value)
    if revocation not in tuple(RevocationScope):
        reader.fail(f'revocation must be "alerts" or "all", not {revocation!r}')
    reader.done()
    return CaWatchConfig(
        name=name,
        issuers=issuers,
        every_ca=every_ca,
        flags=tuple(dict.fromkeys(flags)),
        ignore_lint=tuple(dict.fromkeys(ignored)),
        revocation=RevocationScope(revocation),
    )


def _notify(file: Path, position: int, table: Any) -> ChannelSettings:
    reader = _Reader(file, f"[[notify]] #{position + 1}", table)
    kind = reader.string("kind")
    if kind not in NOTIFY_KINDS:
        reader.fail(f"kind must be one of {', '.join(NOTIFY_KINDS)}, not {kind!r}")
    min_severity = reader.string("min_severity", "low")
    if min_severity not in _SEVERITIES:
        reader.fail(f"min_severity must be one of {', '.join(_SEVERITIES)}, not {min_severity!r}")
    watches = tuple(reader.strings("watches"))
    # Channel options are checked by the channel itself when it is built; they are kept as given.
    return ChannelSettings(
        kind=kind, options=dict(reader.table), min_severity=Severity(min_severity), watches=watches
    )


def _resolve_database(url: str, base: Path) -> str:
    """A relative SQLite path is taken relative to the config file, not to wherever the command runs."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def _logs_settings(path: Path, table: Any) -> LogsSettings:
    reader = _Reader(path, "[logs]", table)
    logs_list = reader.string("list", "chrome")
    start = reader.string("start", "end")
    poll_interval = reader.number("poll_interval", 10.0, minimum=0.05)
    refresh_interval = reader.number("refresh_interval", 3600.0, minimum=1.0)
    states = tuple(reader.strings("states")) or LogsSettings.states
    include = tuple(reader.strings("include"))
    exclude = tuple(reader.strings("exclude"))
    batch_size = reader.integer("batch_size", 1000, minimum=1)
    # Ceilings on the adaptive per-log budget (logs/budget.py); absent means none.
    has = reader.table.__contains__
    rate = reader.number("requests_per_second", 0, minimum=0.01) if has("requests_per_second") else None
    concurrency = reader.integer("concurrency", 0, minimum=1) if has("concurrency") else None
    request_timeout = reader.number("request_timeout", 60.0, minimum=0.1)
    if start not in tuple(Start):
        reader.fail(f'start must be "end" or "beginning", not {start!r}')
    reader.done()
    return LogsSettings(
        list=logs_list,
        start=Start(start),
        poll_interval=poll_interval,
        refresh_interval=refresh_interval,
        states=states,
        include=include,
        exclude=exclude,
        batch_size=batch_size,
        requests_per_second=rate,
        concurrency=concurrency,
        request_timeout=request_timeout,
    )


def _monitor_settings(path: Path, table: Any) -> MonitorSettings:
    reader = _Reader(path, "[monitor]", table)
    decode_processes = reader.integer("decode_processes", 0)
    commit_entries = reader.integer("commit_entries", 4096, minimum=1)
    keep = reader.string("store", "matched")
    deliver_timeout = reader.number("deliver_timeout", 30.0)
    max_lag = reader.number("max_lag", 3600.0)
    lease_seconds = reader.number("lease_seconds", 30.0, minimum=0.5)
    range_entries = reader.integer("range_entries", 1_000_000, minimum=1)
    range_workers = reader.integer("range_workers", 2, minimum=0)
    decode_timeout = reader.number("decode_timeout", 120.0, minimum=0.1)
    revocation_interval = reader.number("revocation_interval", 21600.0, minimum=1.0)
    metrics_port = reader.integer("metrics_port", 0)
    if metrics_port > 65535:
        reader.fail(f"metrics_port must be a TCP port (1-65535, or 0 for none), not {metrics_port}")
    if keep not in tuple(Keep):
        reader.fail(f'store must be "matched" or "all", not {keep!r}')
    reader.done()
    return MonitorSettings(
        decode_processes=decode_processes,
        commit_entries=commit_entries,
        store=Keep(keep),
        deliver_timeout=deliver_timeout,
        max_lag=max_lag,
        lease_seconds=lease_seconds,
        range_entries=range_entries,
        range_workers=range_workers,
        decode_timeout=decode_timeout,
        revocation_interval=revocation_interval,
        metrics_port=metrics_port,
    )


def _web_settings(path: Path, table: Any) -> WebSettings:
    """[web]: the token comes inline or from a file that only its owner can read; it is never echoed."""
    reader = _Reader(path, "[web]", table)
    token = reader.string("token")
    token_file = reader.string("token_file")
    token_for_reads = reader.boolean("token_for_reads", False)
    time_limit = reader.number("time_limit", DEFAULT_TIME_LIMIT, minimum=0.01)
    reader.done()
    if token is not None and token_file is not None:
        reader.fail("give token or token_file, not both")
    if token_file is not None:
        token = _read_token_file(reader, path.parent / token_file)
    if token is not None and (not token.strip() or len(token.strip()) < 16):
        reader.fail("token must be at least 16 characters (e.g. the output of `openssl rand -hex 32`)")
    if token_for_reads and token is None:
        reader.fail("token_for_reads needs a token or token_file")
    return WebSettings(
        token=token.strip() if token is not None else None,
        token_for_reads=token_for_reads,
        time_limit=time_limit,
    )


def _read_token_file(reader: _Reader, file: Path) -> str:
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        reader.fail(f"token_file {str(file)!r} does not exist")
    except (OSError, UnicodeDecodeError) as exc:
        reader.fail(f"token_file {str(file)!r} cannot be read ({type(exc).__name__})")
    if mode & (stat.S_IRWXO | stat.S_IWGRP):
        reader.fail(f"token_file {str(file)!r} is readable or writable by others: chmod 600 it")
    return text


def parse_config(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    top = _Reader(path, "", data)
    database = top.string("database", "sqlite:///ctsentinel.db")
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", database):
        top.fail(f"database {database!r} must be a sqlite:/// or postgresql:// URL")

    logs = _logs_settings(path, top.table.pop("logs", {}))
    monitor = _monitor_settings(path, top.table.pop("monitor", {}))
    web = _web_settings(path, top.table.pop("web", {}))
    watch_tables = top.table.pop("watch", [])
    ca_watch_tables = top.table.pop("ca_watch", [])
    notify_tables = top.table.pop("notify", [])
    if not isinstance(watch_tables, list):
        top.fail("watch must be an array of tables: write [[watch]]")
    if not isinstance(ca_watch_tables, list):
        top.fail("ca_watch must be an array of tables: write [[ca_watch]]")
    if not isinstance(notify_tables, list):
        top.fail("notify must be an array of tables: write [[notify]]")
    top.done()
    watches = tuple(_watch(path, i, t) for i, t in enumerate(watch_tables))
    ca_watches = tuple(_ca_watch(path, i, t) for i, t in enumerate(ca_watch_tables))
    # Alerts name their watch, so a [[watch]] and a [[ca_watch]] cannot share a name either.
    names = [w.name for w in watches] + [w.name for w in ca_watches]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        table = "[[watch]]" if duplicate in (w.name for w in watches) else "[[ca_watch]]"
        if duplicate in (w.name for w in watches) and duplicate in (w.name for w in ca_watches):
            table = "[[watch]] and [[ca_watch]]"
        raise ConfigError(f"{path}: {table} name {duplicate!r} is used twice")
    notify = tuple(_notify(path, i, t) for i, t in enumerate(notify_tables))
    unknown = next((w for n in notify for w in n.watches if w not in names), None)
    if unknown:
        raise ConfigError(
            f"{path}: [[notify]] names watch {unknown!r}, which no [[watch]] or [[ca_watch]] defines"
        )
    return Config(
        path=path,
        database=_resolve_database(database, path.parent),
        logs=logs,
        monitor=monitor,
        watches=watches,
        notify=notify,
        ca_watches=ca_watches,
        web=web,
    )


def load_config(path: str | Path) -> Config:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found (pass -c FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the config: {exc}") from None
    return parse_config(text, file.resolve())
