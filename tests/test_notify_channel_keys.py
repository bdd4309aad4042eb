"""Delivery channels are keyed by what they are, not by where they stand in the config: reordering
[[notify]] tables never sends a pending delivery to another receiver, and what an earlier version queued
under a positional key ("webhook#1") still goes out after the upgrade."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import test_monitor_run as monitor_run
from ctsentinel.config import parse_config
from ctsentinel.notify import Sender, build_channels
from ctsentinel.notify.stdout import StdoutChannel
from ctsentinel.retry import Backoff, Jitter
from ctsentinel.store import Store
from ctsentinel.watch import Finding
from notify_helpers import BackgroundReceiver, HookReceiver, free_port
from store_certs import Feed, issue, log_info, make_ca, pair_entries
from test_monitor_run import log_list, run_once, write_config

populated = monitor_run.populated
served = monitor_run.served
BEFORE_ALEMBIC = Path(__file__).parent / "data" / "store" / "before-alembic-v2.sqlite"
FAST = Backoff(0.01, 0.05, Jitter.FULL)


def _config(tmp_path: Path, log: Any, scenario: Any, hooks: list[str]) -> Path:
    (watch,) = [w for w in scenario["watches"] if w["name"] == "cloudflare-dns"]
    tables = "".join(
        f'[[notify]]\nkind = "webhook"\nurl = "{url}"\nretry_base = 0.05\nretry_cap = 0.2\n' for url in hooks
    )
    watches = (
        f'[[watch]]\nname = "cloudflare-dns"\ndomains = {json.dumps(watch["domains"])}\n'
        f"ips = {json.dumps(watch['ips'])}\nauthorized_issuers = {json.dumps(watch['authorized_issuers'])}\n"
    )
    return write_config(tmp_path, log_list(log, "rfc6962"), store="matched", watches=watches + tables)


def test_reordering_notify_tables_never_misroutes_pending_deliveries(
    served: Any, populated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, scenario = populated
    log = served()
    with BackgroundReceiver() as ops, BackgroundReceiver() as archive:
        for receiver in (ops, archive):
            receiver.fail_next = 10**6  # down for now: each delivery is tried, and stays pending
        config = _config(tmp_path, log, scenario, [ops.url, archive.url])
        code, _, err = run_once(capsys, config)
        assert code == 0 and "still pending" in err
        queued = {"ops": set(ops.received), "archive": set(archive.received)}
        # Each alert, and the news that its CA revoked it, for each receiver: none under the other's key.
        alerts = {who: {k for k in keys if k.startswith("ctsentinel-alert-")} for who, keys in queued.items()}
        assert len(alerts["ops"]) == len(alerts["archive"]) == len(scenario["expected_alerts"])
        assert not queued["ops"] & queued["archive"]

        # The operator reorders the tables (and the receivers come back).
        _config(tmp_path, log, scenario, [archive.url, ops.url])
        ops.fail_next = archive.fail_next = 0
        code, _, err = run_once(capsys, config)
        assert (code, err) == (0, "")
    assert {key for key, _, _ in ops.accepted} == queued["ops"]
    assert {key for key, _, _ in archive.accepted} == queued["archive"]


def _webhook(url: str) -> str:
    return f'[[notify]]\nkind = "webhook"\nurl = "{url}"\n'


STDOUT = '[[notify]]\nkind = "stdout"\n'


@pytest.mark.parametrize(
    ("tables", "delivered_to"),
    [
        ([_webhook("{r}")], "r"),  # the config that queued them
        ([STDOUT, _webhook("{r}")], "r"),  # another table put first: still the only webhook
        ([_webhook("{r}"), _webhook("{s}")], "r"),  # several webhooks: the one at the old position
        ([STDOUT, _webhook("{r}"), _webhook("{s}")], None),  # nothing says which: failed, visibly
    ],
)
def test_deliveries_an_earlier_version_queued_by_position_still_go_out(
    tmp_path: Path, tables: list[str], delivered_to: str | None
) -> None:
    """before-alembic-v2.sqlite was written by an earlier ctsentinel: an alert and a log-health event are
    pending for "webhook#1", the first [[notify]] table of its config, a webhook."""
    db = tmp_path / "before.sqlite"
    shutil.copyfile(BEFORE_ALEMBIC, db)

    async def go() -> dict[str, HookReceiver]:
        receivers = {"r": HookReceiver(), "s": HookReceiver()}
        for receiver in receivers.values():
            await receiver.start()
        toml = "".join(t.format(r=receivers["r"].url, s=receivers["s"].url) for t in tables)
        channels = build_channels(parse_config(toml, tmp_path / "ctsentinel.toml").notify)
        with Store.open(str(db)) as store:
            assert {item.channel for item in store.outbox.pending(10)} == {"webhook#1"}
            sender = Sender(store.outbox, channels, backoff=FAST)
            try:
                assert await sender.drain(5) == []
            finally:
                await sender.close()
                for receiver in receivers.values():
                    await receiver.stop()
            counts = store.outbox.counts()
            failed = [row.last_error for row in store.outbox.undelivered()]
        assert counts == ({"pending": 0, "delivered": 2, "failed": 0} if delivered_to else
                          {"pending": 0, "delivered": 0, "failed": 2}), failed  # fmt: skip
        if delivered_to is None:
            assert all("channel webhook#1 is no longer configured" in str(error) for error in failed)
        return receivers

    receivers = asyncio.run(go())
    for name, receiver in receivers.items():
        assert len(receiver.accepted) == (2 if name == delivered_to else 0)


def test_an_alert_queued_under_an_old_key_is_not_queued_again_when_it_grows(tmp_path: Path) -> None:
    """The precertificate's alert was queued by an earlier version for "stdout#1"; after the upgrade the
    final certificate of the same issuance grows the alert, and the channel (now "stdout", once
    "stdout#1") must not get the alert a second time. A new alert is queued under the new key."""
    store = Store.open(str(tmp_path / "ct.db"))
    feed = Feed(store, log_info("upgrade"))
    findings = [Finding("w", "unauthorized_issuer", "critical", ("hook.example",))]
    ca = make_ca("Upgrade CA")
    first, second = issue(ca, ["hook.example"]), issue(ca, ["www.hook.example"])
    precert, cert = pair_entries(first, findings)
    feed.commit([precert], routes=[StdoutChannel("stdout#1")])  # keyed by position, as the old version did
    (channel,) = build_channels(parse_config('[[notify]]\nkind = "stdout"\n', tmp_path / "c.toml").notify)
    assert (channel.key, channel.aliases) == ("stdout", ("stdout#1",))
    feed.commit([cert], routes=[channel])  # the final certificate: the same issuance, the same alert
    feed.commit(pair_entries(second, findings)[:1], routes=[channel])
    assert [(item.channel, item.payload["dns_names"]) for item in store.outbox.pending(10)] == [
        ("stdout#1", ["hook.example"]),
        ("stdout", ["www.hook.example"]),
    ]
    assert len(store.list_alerts()) == 2
    store.close()


def test_keys_name_kind_and_destination_without_secrets(tmp_path: Path) -> None:
    port = free_port()
    toml = f"""
[[notify]]
kind = "stdout"
[[notify]]
kind = "stdout"
min_severity = "critical"
[[notify]]
kind = "jsonl"
path = "/var/log/ct/alerts.jsonl"
[[notify]]
kind = "webhook"
url = "https://hooks.example.com/services/T0/B0/XOXB-SECRET"
[[notify]]
kind = "webhook"
url = "https://hooks.example.com/services/T1/B1/OTHER-SECRET"
[[notify]]
kind = "email"
host = "127.0.0.1"
port = {port}
from = "ct@example.org"
to = ["ops@example.org"]
[[notify]]
kind = "exec"
command = ["/usr/local/bin/page", "--token", "PAGER-SECRET"]
[[notify]]
kind = "webhook"
name = "team"
url = "https://team.example.com/hook"
"""
    channels = build_channels(parse_config(toml, tmp_path / "c.toml").notify)
    keys = [channel.key for channel in channels]
    assert keys[:3] == ["stdout", "stdout (2)", "jsonl:/var/log/ct/alerts.jsonl"]
    assert keys[3].startswith("webhook:https://hooks.example.com/…#") and keys[3] != keys[4]
    assert keys[4].startswith("webhook:https://hooks.example.com/…#")
    assert keys[5].startswith(f"email:127.0.0.1:{port}#")
    assert keys[6].startswith("exec:page#")
    assert keys[7] == "team" and channels[7].aliases == ()
    assert [c.aliases for c in channels[:7]] == [
        ("stdout#1",),
        ("stdout#2",),
        ("jsonl#3",),
        ("webhook#4",),
        ("webhook#5",),
        ("email#6",),
        ("exec#7",),
    ]
    assert not any("SECRET" in key for key in keys)
    # Reordered, every channel keeps its key.
    tables = toml.split("[[notify]]")[1:]
    reordered = "".join("[[notify]]" + table for table in reversed(tables))
    again = build_channels(parse_config(reordered, tmp_path / "c.toml").notify)
    assert {c.key for c in again} == set(keys)  # the two stdout tables trade "stdout" and "stdout (2)"
