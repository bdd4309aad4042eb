"""The notify channels against real receivers on 127.0.0.1: an aiohttp webhook server that checks the
signature, files on disk, real scripts; hostile certificate fields must stay inert everywhere."""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import os
import stat
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.config import parse_config
from ctsentinel.errors import UserError
from ctsentinel.notify import DeliveryError, build_channels, health_event
from ctsentinel.notify.email import build_message
from ctsentinel.notify.exec import ExecChannel, hook_environment
from ctsentinel.notify.jsonl import JsonlChannel
from ctsentinel.notify.render import summary, text_block
from ctsentinel.notify.stdout import StdoutChannel
from ctsentinel.notify.webhook import WebhookChannel, body_of, signature
from ctsentinel.watch.severity import Severity
from notify_helpers import (
    CONTRACT_KEYS,
    GOOGLE_PEM,
    GOOGLE_SHA256,
    GOOGLE_TBS,
    PILOT,
    HookReceiver,
    alert_event,
)

HOSTILE_CN = "evil.example\r\nBcc: victim@example.com\x1b[2J\x1b]0;owned\x07\u202etxt.exe"


def channels_from(toml: str, tmp_path: Path):
    text = '[[watch]]\nname = "google"\ndomains = ["google.com"]\n' + toml
    return build_channels(parse_config(text, tmp_path / "ctsentinel.toml").notify)


# -- config ----------------------------------------------------------------------------------------------


BAD_OPTIONS = [
    ('kind = "webhook"', "webhook: url is required"),
    ('kind = "webhook"\nurl = "ftp://x/"', "webhook: url 'ftp://x/' must be an http:// or https:// URL"),
    ('kind = "webhook"\nurl = "http://127.0.0.1/"\nsecrte = "x"', "webhook: unknown option 'secrte'"),
    (
        'kind = "webhook"\nurl = "http://127.0.0.1/"\ntimeout = "5"',
        "webhook: timeout must be a number, not str",
    ),
    ('kind = "jsonl"', "jsonl: path is required"),
    ('kind = "email"\nhost = "h"\nfrom = "a@b.c"', "email: to is required"),
    ('kind = "email"\nhost = "h"\nfrom = "a@b.c"\nto = "x"', "email: 'x' is not an email address"),
    (
        'kind = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["d@e.f"]\nusername = "u"',
        "email: username and password go together",
    ),
    (
        'kind = "email"\nhost = "h"\nfrom = "a@b.c"\nto = "d@e.f"\nport = 70000',
        "email: port must be between 1 and 65535",
    ),
    ('kind = "exec"\ncommand = []', "exec: command must not be empty"),
    ('kind = "exec"\ncommand = ["/bin/true", 3]', "exec: command[1] must be a non-empty string"),
]


@pytest.mark.parametrize(("table", "message"), BAD_OPTIONS)
def test_bad_channel_options_are_one_line_errors(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        channels_from(f'[[notify]]\nkind = "stdout"\n\n[[notify]]\n{table}\n', tmp_path)
    assert str(caught.value) == f"[[notify]] #2 {message}"
    assert "\n" not in str(caught.value)


def test_two_channels_with_one_name(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^\[\[notify\]\]: two channels are named 'stdout'$"):
        channels_from('[[notify]]\nkind = "stdout"\n[[notify]]\nkind = "stdout"\nname = "stdout"\n', tmp_path)
    with pytest.raises(UserError, match=r"^\[\[notify\]\]: two channels are named 'ops'$"):
        channels_from('[[notify]]\nkind = "stdout"\nname = "ops"\n' * 2, tmp_path)


def test_channels_built_from_config(tmp_path: Path) -> None:
    toml = f"""
[[notify]]
kind = "stdout"
[[notify]]
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "s3"
min_severity = "high"
watches = ["google"]
[[notify]]
kind = "jsonl"
name = "archive"
path = "{tmp_path / "alerts.jsonl"}"
[[notify]]
kind = "exec"
command = "/usr/local/bin/hook"
[[notify]]
kind = "email"
host = "127.0.0.1"
from = "ct@example.org"
to = "ops@example.org"
"""
    chans = channels_from(toml, tmp_path)
    keys = [c.key for c in chans]  # by name, else by kind and destination (test_notify_channel_keys.py)
    assert keys[:3] == ["stdout", keys[1], "archive"] and keys[1].startswith("webhook:http://127.0.0.1:9/…#")
    assert keys[3].startswith("exec:hook#") and keys[4].startswith("email:127.0.0.1:25#")
    hook = chans[1]
    assert isinstance(hook, WebhookChannel) and hook.secret == "s3" and hook.min_severity == "high"
    assert hook.watches == ("google",)
    assert isinstance(chans[3], ExecChannel) and chans[3].command == ["/usr/local/bin/hook"]


def test_filters_by_severity_and_watch() -> None:
    chan = StdoutChannel("s", min_severity="high", watches=("google",))
    assert chan.accepts(Severity.CRITICAL, "google")
    assert chan.accepts(Severity.HIGH, "google")
    assert not chan.accepts(Severity.MEDIUM, "google")
    assert not chan.accepts(Severity.CRITICAL, "other")
    assert not chan.accepts(Severity.NONE, "google")  # authorized sightings never notify
    # Health events pass the watch filter (a log problem concerns every watch), not the severity one.
    assert chan.accepts(Severity.CRITICAL, None)  # a log-health event concerns every watch
    assert not chan.accepts(Severity.MEDIUM, None)
    assert StdoutChannel("t").accepts(Severity.LOW, "anything")


def test_alert_json_keeps_the_contract_and_drops_private_fields() -> None:
    view = alert_event().to_json()
    assert list(view) == CONTRACT_KEYS
    assert json.loads(body_of(alert_event())) == view


# -- stdout ----------------------------------------------------------------------------------------------


def test_stdout_block_is_readable_and_escaped() -> None:
    stream = io.StringIO()
    event = alert_event(matched=[HOSTILE_CN], dns_names=[HOSTILE_CN, "www.google.com"])
    asyncio.run(StdoutChannel("s", stream=stream).deliver(event, "k"))
    out = stream.getvalue()
    assert out.startswith("ctsentinel alert #1: critical unauthorized_issuer: certificate for evil.example")
    assert "serial:       749efe7882cb2d28" in out
    assert f"sha256:       {GOOGLE_SHA256}" in out
    assert f"seen in:      {PILOT} #9876543 (cert)" in out
    assert "valid:        2015-10-07T11:10:38Z to 2016-01-05T00:00:00Z" in out
    for raw in ("\x1b", "\x07", "\r", "\u202e"):
        assert raw not in out
    assert "\\x1b[2J" in out and "\\u202e" in out and "\\x0d\\x0aBcc" in out
    assert out.count("\n") == len(text_block(event).splitlines()) + 1


def test_stdout_closed_stream_is_a_delivery_error() -> None:
    stream = io.StringIO()
    stream.close()
    with pytest.raises(DeliveryError, match=r"^stdout: "):
        asyncio.run(StdoutChannel("s", stream=stream).deliver(alert_event(), "k"))


# -- jsonl -----------------------------------------------------------------------------------------------


def test_jsonl_appends_contract_objects(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    chan = JsonlChannel("j", str(path))
    hostile = alert_event(alert_id=2, matched=[HOSTILE_CN])
    health = health_event(PILOT, "misbehaving", "bad_signature", time=None)

    async def go() -> None:
        await chan.deliver(alert_event(), "k1")
        await chan.deliver(hostile, "k2")
        await chan.deliver(health, "k3")

    asyncio.run(go())
    raw = path.read_bytes()
    assert raw.isascii() and b"\x1b" not in raw and b"\r" not in raw
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert lines == [alert_event().to_json(), hostile.to_json(), health.to_json()]
    assert lines[1]["matched"] == [HOSTILE_CN]  # escaped in the file, the exact text once parsed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _append_many(path: str, writer: int, count: int) -> None:
    chan = JsonlChannel("j", path)

    async def go() -> None:
        for n in range(count):
            # Lines of very different lengths make torn or interleaved writes show.
            event = health_event(f"writer {writer}", str(n), "x" * (n * 97 % 5000))
            await chan.deliver(event, f"{writer}:{n}")

    asyncio.run(go())


def test_jsonl_concurrent_appenders_never_interleave(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.jsonl")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, w, 150)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    lines = map(json.loads, Path(path).read_text().splitlines())
    seen = sorted((int(obj["log"].split()[1]), int(obj["problem"])) for obj in lines)
    assert seen == [(w, n) for w in range(4) for n in range(150)]


def test_jsonl_unwritable_path_is_a_delivery_error(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match=r"^jsonl .*missing/a\.jsonl: cannot open: No such file"):
        asyncio.run(JsonlChannel("j", str(tmp_path / "missing" / "a.jsonl")).deliver(alert_event(), "k"))


# -- webhook ---------------------------------------------------------------------------------------------


def test_webhook_posts_signed_contract_object() -> None:
    async def go() -> HookReceiver:
        receiver = await HookReceiver(secret="hunter2").start()
        chan = WebhookChannel("w", receiver.url, secret="hunter2")
        try:
            await chan.deliver(alert_event(), "alert-1:w")
            await chan.deliver(health_event(PILOT, "behind", "2h 5m behind"), "health-1:w")
        finally:
            await chan.close()
            await receiver.stop()
        return receiver

    receiver = asyncio.run(go())
    (key1, body1, headers1), (key2, body2, headers2) = receiver.accepted
    assert key1 == "alert-1:w" and body1 == alert_event().to_json() and list(body1) == CONTRACT_KEYS
    assert headers1["X-Ctsentinel-Event"] == "alert" and headers1["User-Agent"].startswith("ctsentinel/")
    assert key2 == "health-1:w" and body2["event"] == "log_health" and body2["detail"] == "2h 5m behind"
    assert headers2["X-Ctsentinel-Event"] == "log_health"
    assert "_pem" not in json.dumps(body1)


def test_webhook_big_answers_are_not_read_whole() -> None:
    async def go() -> HookReceiver:
        receiver = await HookReceiver().start()
        receiver.answer = b"x" * (8 << 20)
        chan = WebhookChannel("w", receiver.url)
        try:
            for number in range(3):  # the connection is dropped, not reused, and the next one works
                await chan.deliver(alert_event(alert_id=number), f"k{number}")
        finally:
            await chan.close()
            await receiver.stop()
        return receiver

    assert [key for key, _, _ in asyncio.run(go()).accepted] == ["k0", "k1", "k2"]


def test_webhook_signature_is_hmac_sha256_of_timestamp_key_and_body() -> None:
    # printf '1717000000.k1.{}' | openssl dgst -sha256 -hmac Jefe
    expected = "2c1a5c79d22a34b2e2d5a746ff0e72a340a0325a1bb348983515af7683076564"
    assert signature("Jefe", 1717000000, "k1", b"{}") == "v1=" + expected
    for changed in [(1717000001, "k1", b"{}"), (1717000000, "k2", b"{}"), (1717000000, "k1", b"{ }")]:
        assert signature("Jefe", *changed) != "v1=" + expected


def test_a_captured_webhook_request_cannot_be_replayed(tmp_path: Path) -> None:
    """A receiver that checks what docs/webhooks.md says (its own snippet, run here) takes a delivery when
    it arrives, and refuses the same request replayed later, given a fresh timestamp, or a new key."""
    doc = (Path(__file__).parent.parent / "docs" / "webhooks.md").read_text()
    snippet = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    verify = namespace["verify_ctsentinel_request"]

    async def go() -> HookReceiver:
        receiver = HookReceiver()  # takes everything: the check runs below, on what it captured
        await receiver.start()
        chan = WebhookChannel("w", receiver.url, secret="s3cret")
        try:
            await chan.deliver(alert_event(), "alert-1:w")
        finally:
            await chan.close()
            await receiver.stop()
        return receiver

    sent = time.time()
    ((key, body_json, headers),) = asyncio.run(go()).accepted
    assert key == "alert-1:w" == headers["Idempotency-Key"]
    body = body_of(alert_event())
    assert json.loads(body) == body_json
    timestamp = int(headers["X-Ctsentinel-Timestamp"])
    assert abs(timestamp - sent) < 5 and headers["X-Ctsentinel-Signature"].startswith("v1=")
    assert verify("s3cret", headers, body)
    assert not verify("wrong", headers, body)
    assert not verify("s3cret", headers, body, now=timestamp + 301)  # replayed 5 minutes later
    fresh = dict(headers, **{"X-Ctsentinel-Timestamp": str(timestamp + 3600)})
    assert not verify("s3cret", fresh, body, now=timestamp + 3600)  # replayed with a new timestamp
    renamed = dict(headers, **{"Idempotency-Key": "alert-1:other"})
    assert not verify("s3cret", renamed, body)  # replayed under a new key, to dodge deduplication
    assert not verify("s3cret", headers, body.replace(b"critical", b"low"))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("wrong-secret", r"HTTP 401$"),
        ("fail-500", r"HTTP 500$"),
        ("fail-404", r"HTTP 404$"),
        ("redirect", r"HTTP 302$"),
        ("slow", r"no answer within 0\.3s$"),
        ("closed-port", r": cannot connect: Connection refused$"),
    ],
)
def test_webhook_failures_are_delivery_errors(setup: str, message: str) -> None:
    async def go() -> HookReceiver:
        receiver = HookReceiver(secret="right")
        url = receiver.url
        secret = "right"
        if setup == "wrong-secret":
            secret = "wrong"
        elif setup.startswith("fail-"):
            receiver.fail_next, receiver.fail_status = 1, int(setup[5:])
        elif setup == "redirect":
            url = url.replace("/hook", "/moved")
        elif setup == "slow":
            receiver.delay = 2.0
        if setup != "closed-port":
            await receiver.start()
        chan = WebhookChannel("w", url, secret=secret, timeout=0.3)
        try:
            with pytest.raises(DeliveryError, match=message) as caught:
                await chan.deliver(alert_event(), "k")
            # Named by scheme, host and port: the path of a webhook URL is often its secret.
            assert str(caught.value).startswith(f"webhook http://127.0.0.1:{receiver.port}/…: ")
            assert "/hook" not in str(caught.value) and "/moved" not in str(caught.value)
            assert "\n" not in str(caught.value)
        finally:
            await chan.close()
            await receiver.stop()
        return receiver

    receiver = asyncio.run(go())
    if setup != "slow":  # a slow receiver does take it, after the sender gave up: hence idempotency keys
        assert receiver.accepted == []  # in particular the redirect was not followed to /hook


# -- exec ------------------------------------------------------------------------------------------------

HOOK = """#!{python}
import json, os, sys
out = {{"stdin": json.load(sys.stdin), "env": dict(os.environ)}}
for name in ("JSON_FILENAME", "CERT_FILENAME"):
    if name in os.environ:
        out[name] = open(os.environ[name]).read()
with open({record!r}, "a") as f:
    f.write(json.dumps(out) + "\\n")
"""


def write_script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_exec_gives_stdin_json_and_certspotter_variables(tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    script = write_script(tmp_path / "hook.py", HOOK.format(python=sys.executable, record=str(record)))
    chan = ExecChannel("x", [script])
    event = alert_event()
    asyncio.run(chan.deliver(event, "alert-1:x"))
    call = json.loads(record.read_text())
    env = call["env"]
    assert call["stdin"] == event.to_json()
    assert json.loads(call["JSON_FILENAME"]) == event.to_json()
    assert call["CERT_FILENAME"] == GOOGLE_PEM
    expected = {
        "EVENT": "discovered_cert",
        "WATCH_ITEM": "www.google.com",
        "LOG_URI": PILOT,
        "ENTRY_INDEX": "9876543",
        "TBS_SHA256": GOOGLE_TBS,
        "CERT_SHA256": GOOGLE_SHA256,
        "PUBKEY_SHA256": "44542fa45d9075a24d61196f5dab712fd9991fa5af8ca1866e99df5162fddf3e",
        "SUBJECT_DN": "CN=www.google.com,O=Google Inc,L=Mountain View,ST=California,C=US",
        "ISSUER_DN": "CN=Google Internet Authority G2,O=Google Inc,C=US",
        "SERIAL": "749efe7882cb2d28",
        "NOT_BEFORE": "2015-10-07 11:10:38 +0000 UTC",
        "NOT_BEFORE_RFC3339": "2015-10-07T11:10:38Z",
        "NOT_BEFORE_UNIXTIME": "1444216238",
        "NOT_AFTER": "2016-01-05 00:00:00 +0000 UTC",
        "NOT_AFTER_UNIXTIME": "1451952000",
        "SUMMARY": "critical unauthorized_issuer: certificate for www.google.com (watch google)",
        "CTSENTINEL_IDEMPOTENCY_KEY": "alert-1:x",
    }
    assert {name: env.get(name) for name in expected} == expected
    # The temporary files are gone once the script finished.
    assert not Path(env["JSON_FILENAME"]).exists() and not Path(env["CERT_FILENAME"]).exists()


def test_exec_hostile_fields_and_health_events(tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    script = write_script(tmp_path / "hook.py", HOOK.format(python=sys.executable, record=str(record)))
    chan = ExecChannel("x", [script])
    hostile = alert_event(
        _subject="CN=" + HOSTILE_CN + "\x00", matched=[HOSTILE_CN], _pem=None, reason="malformed"
    )

    async def go() -> None:
        await chan.deliver(hostile, "k1")
        await chan.deliver(health_event(PILOT, "misbehaving", "fork at size 5"), "k2")

    asyncio.run(go())
    first, second = (json.loads(line) for line in record.read_text().splitlines())
    assert first["env"]["EVENT"] == "malformed_cert"
    escaped = "evil.example\\x0d\\x0aBcc: victim@example.com\\x1b[2J\\x1b]0;owned\\x07\\u202etxt.exe"
    assert first["env"]["SUBJECT_DN"] == f"CN={escaped}\\x00"
    assert "\x1b" not in first["env"]["WATCH_ITEM"] and "CERT_FILENAME" not in first["env"]
    assert first["stdin"]["matched"] == [HOSTILE_CN]  # JSON carries the exact text
    assert second["env"]["EVENT"] == "error" and second["env"]["LOG_URI"] == PILOT
    assert second["env"]["CTSENTINEL_DETAIL"] == "fork at size 5" and "SERIAL" not in second["env"]
    assert second["stdin"]["event"] == "log_health"


def test_exec_non_zero_exit_names_first_stderr_line(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "fail.sh", "#!/bin/sh\ncat >/dev/null\necho 'smtp relay down' >&2\necho more >&2\nexit 3\n"
    )
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(ExecChannel("x", [script]).deliver(alert_event(), "k"))
    assert str(caught.value) == f"exec {script}: exit status 3: smtp relay down"


def test_exec_missing_program(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match=r"cannot run: No such file or directory$"):
        asyncio.run(ExecChannel("x", [str(tmp_path / "nope")]).deliver(alert_event(), "k"))


def test_exec_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "child.pid"
    script = write_script(tmp_path / "hang.sh", f"#!/bin/sh\nsleep 30 &\necho $! > {pids}\nwait\n")
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"still running after 0\.5s; killed$"):
        asyncio.run(ExecChannel("x", [script], timeout=0.5).deliver(alert_event(), "k"))
    assert time.monotonic() - started < 5
    child = int(pids.read_text())
    for _ in range(50):  # the grandchild is killed with the group (it may linger briefly as a zombie)
        try:
            os.kill(child, 0)
            state = Path(f"/proc/{child}/stat").read_text().split()[2]
            if state == "Z":
                break
        except (ProcessLookupError, FileNotFoundError):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the script's child survived the timeout")


def test_render_summary_of_health_event() -> None:
    event = health_event(PILOT, "behind\x1b[31m", "x")
    assert summary(event) == f"log {PILOT}: behind\\x1b[31m"


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=80), st.text(max_size=40))
def test_any_certificate_text_stays_inert(name: str, issuer: str) -> None:
    event = alert_event(matched=[name], dns_names=[name], issuer=issuer, _subject="CN=" + name)
    block = text_block(event)
    assert all(c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") for c in block)
    assert block.count("\n") == len(text_block(alert_event()).splitlines())  # no line was added
    message = build_message(event, "key", "ct@example.org", ["ops@example.org"])
    subject = str(message["Subject"])
    assert all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") for c in subject)
    assert len(subject) <= 150
    raw = message.as_bytes()
    headers = raw.split(b"\n\n", 1)[0].decode("ascii")  # the default policy encodes non-ASCII
    assert [line.split(":")[0] for line in headers.splitlines() if line[:1] not in (" ", "\t")] == [
        "Subject", "From", "To", "Date", "Message-ID", "X-Ctsentinel-Idempotency-Key", "X-Ctsentinel-Event",
        "MIME-Version", "Content-Type",
    ]  # fmt: skip
    env = hook_environment(event, "key")
    assert all("\n" not in value and "\x00" not in value for value in env.values())
