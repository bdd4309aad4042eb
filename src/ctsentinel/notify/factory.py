"""Channels built from the config's [[notify]] tables, each validating its own options.

Every table: kind, min_severity ("low"), watches ([] = all), name (the outbox key), retry_base (2 s),
retry_cap (600 s). Per kind:
    stdout   (nothing more)
    jsonl    path (required)
    webhook  url (required, http/https), secret (signs timestamp, key and body: docs/webhooks.md),
             timeout (10 s), concurrency (8 requests in flight)
    email    host, from, to (a string or a list) (required); port (25, or 465 with smtps), starttls
             (false), smtps (false: TLS from the first byte), username and password (together, and only
             with starttls or smtps), cafile (CA bundle to trust for TLS), timeout (30 s)
    exec     command (a program path or a list: program and arguments; no shell) (required), timeout
             (30 s), concurrency (1)

A channel's outbox key is its `name` option when given, else its kind and destination: "stdout",
"jsonl:<path>", "webhook:<scheme://host:port/…>#<hash>", "email:<host:port>#<hash>",
"exec:<program>#<hash>", the hash (8 hex digits of SHA-256) over the whole URL, recipients or command, so
that nothing secret is shown and two destinations on one host differ. Reordering, adding or removing
[[notify]] tables therefore never sends a pending delivery to another channel; changing a channel's
destination makes it a new channel (what was pending for the old one fails visibly), unless it has a
name. Channels with one destination (two stdout tables with other filters) are told apart by their
order among themselves: "stdout", "stdout (2)".

Earlier versions keyed an unnamed channel by its place, "<kind>#<position>". Deliveries still pending
under such a key go to the only channel of that kind, or, when there are several, to the unnamed one at
that position (the config being most likely the one that queued them); a channel keeps its old key as an
alias, so that an alert queued under it is not queued again when it grows (see notify.sender).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

from ctsentinel.errors import UserError
from ctsentinel.notify.base import Channel
from ctsentinel.notify.email import CLEARTEXT_LOGIN, EmailChannel
from ctsentinel.notify.exec import ExecChannel
from ctsentinel.notify.jsonl import JsonlChannel
from ctsentinel.notify.options import Options
from ctsentinel.notify.settings import ChannelSettings
from ctsentinel.notify.stdout import StdoutChannel
from ctsentinel.notify.webhook import WebhookChannel
from ctsentinel.redact import redact_url

_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


def build_channel(config: ChannelSettings, position: int, stdout: TextIO | None = None) -> Channel:
    """The channel of the `position`-th (0-based) [[notify]] table; UserError on a bad option."""
    where = f"[[notify]] #{position + 1} {config.kind}"
    opts = Options(where, config.options)
    name = opts.string("name")
    key = name or ""  # unnamed: derived from the destination once the channel is built
    common: dict[str, Any] = {"min_severity": config.min_severity, "watches": config.watches}
    channel: Channel
    if config.kind == "stdout":
        channel = StdoutChannel(key, stream=stdout, **common)
    elif config.kind == "jsonl":
        channel = JsonlChannel(key, opts.string("path", required=True), **common)
    elif config.kind == "webhook":
        url = opts.string("url", required=True)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise opts.fail(f"url {redact_url(url)!r} must be an http:// or https:// URL")
        channel = WebhookChannel(
            key,
            url,
            secret=opts.string("secret"),
            timeout=opts.number("timeout", 10.0, minimum=0.1),
            concurrency=opts.integer("concurrency", 8, minimum=1, maximum=256),
            **common,
        )
    elif config.kind == "email":
        sender = opts.string("from", required=True)
        recipients = opts.strings("to", required=True, single=True)
        for address in [sender, *recipients]:
            if not _ADDRESS.match(address):
                raise opts.fail(f"{address!r} is not an email address")
        username, password = opts.string("username"), opts.string("password")
        if (username is None) != (password is None):
            raise opts.fail("username and password go together")
        starttls, smtps = opts.boolean("starttls", False), opts.boolean("smtps", False)
        if starttls and smtps:
            raise opts.fail("starttls and smtps exclude each other (smtps: TLS from the first byte)")
        if username is not None and not (starttls or smtps):
            raise opts.fail(f"username and password: {CLEARTEXT_LOGIN}")
        channel = EmailChannel(
            key,
            opts.string("host", required=True),
            sender,
            recipients,
            port=opts.integer("port", 465 if smtps else 25, minimum=1),
            starttls=starttls,
            smtps=smtps,
            username=username,
            password=password,
            cafile=opts.string("cafile"),
            timeout=opts.number("timeout", 30.0, minimum=0.1),
            **common,
        )
    elif config.kind == "exec":
        command = opts.strings("command", required=True, single=True)
        channel = ExecChannel(
            key,
            command,
            timeout=opts.number("timeout", 30.0, minimum=0.1),
            concurrency=opts.integer("concurrency", 1, minimum=1, maximum=64),
            **common,
        )
    else:
        raise opts.fail(f"kind {config.kind!r} is unknown")
    channel.retry_base = opts.number("retry_base", Channel.retry_base, minimum=0.01)
    channel.retry_cap = opts.number("retry_cap", Channel.retry_cap, minimum=channel.retry_base)
    opts.done()
    if not name:
        channel.key = destination_key(channel)
        channel.aliases = (legacy_key(config.kind, position),)
    return channel


def destination_key(channel: Channel) -> str:
    """An unnamed channel's outbox key: its kind and destination, never its place in the config."""
    label, identity = channel.destination()
    if not identity:
        return channel.kind
    if identity == (label,):
        return f"{channel.kind}:{label}"
    digest = hashlib.sha256("\x00".join(identity).encode()).hexdigest()[:8]
    return f"{channel.kind}:{label}#{digest}"


def legacy_key(kind: str, position: int) -> str:
    """The key earlier versions gave the unnamed channel of the `position`-th (0-based) table."""
    return f"{kind}#{position + 1}"


def build_channels(configs: Sequence[ChannelSettings], stdout: TextIO | None = None) -> list[Channel]:
    """Every configured channel; UserError (one line) for a bad option or two channels with one name."""
    channels = [build_channel(config, position, stdout) for position, config in enumerate(configs)]
    named = {config.options.get("name") for config in configs}
    seen: dict[str, int] = {}
    for channel in channels:
        if channel.key in named:
            continue
        seen[channel.key] = seen.get(channel.key, 0) + 1
        if seen[channel.key] > 1:
            channel.key = f"{channel.key} ({seen[channel.key]})"
    keys = [channel.key for channel in channels]
    twice = next((key for key in keys if keys.count(key) > 1), None)
    if twice is not None:
        raise UserError(f"[[notify]]: two channels are named {twice!r}")
    return channels
