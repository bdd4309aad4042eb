"""`ctsentinel run --once` delivering the alerts of the real test log (the fina-1.1.1.1 scenario) to a real
webhook receiver: every alert once, exactly the `alerts --json` objects; a kill -9 in the middle of the
deliveries loses nothing; a receiver that stays down leaves the deliveries pending, saying so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import test_monitor_run as monitor_run
from ctsentinel import cli
from notify_helpers import BackgroundReceiver, free_port
from test_monitor_run import log_list, run_once, write_config

# The populated test log of the monitor's tests (module-scoped: populated once here too).
populated = monitor_run.populated
served = monitor_run.served


def config_with_hook(tmp_path: Path, log: Any, scenario: Any, url: str) -> Path:
    (watch,) = [w for w in scenario["watches"] if w["name"] == "cloudflare-dns"]
    watches = (
        f'[[watch]]\nname = "cloudflare-dns"\ndomains = {json.dumps(watch["domains"])}\n'
        f"ips = {json.dumps(watch['ips'])}\nauthorized_issuers = {json.dumps(watch['authorized_issuers'])}\n"
        f'[[notify]]\nkind = "webhook"\nurl = "{url}"\nsecret = "s"\nretry_base = 0.05\nretry_cap = 0.2\n'
    )
    return write_config(tmp_path, log_list(log, "rfc6962"), store="matched", watches=watches)


def alerts_json(capsys: pytest.CaptureFixture[str], config: Path) -> list[dict[str, Any]]:
    assert cli.main(["-c", str(config), "alerts", "--json"]) == 0
    alerts: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return alerts


def is_alert_delivery(idempotency_key: str) -> bool:
    """An alert's delivery, not the news of its revocation (store.outbox.idempotency_key names the kind)."""
    return idempotency_key.startswith("ctsentinel-alert-")


def alert_counts(receiver: BackgroundReceiver) -> Counter[str]:
    return Counter({key: n for key, n in receiver.counts().items() if is_alert_delivery(key)})


def test_run_once_delivers_every_alert(
    served: Any, populated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, scenario = populated
    with BackgroundReceiver(secret="s") as receiver:
        config = config_with_hook(tmp_path, served(), scenario, receiver.url)
        code, _, err = run_once(capsys, config)
        assert (code, err) == (0, "")
        alerts = alerts_json(capsys, config)
    assert len(alerts) >= 3  # the scenario plants unauthorized certificates for 1.1.1.1
    # Besides the alerts, the news that their CA revoked them ({"event": "revocation", ...}).
    # An alert is sent as it was when made: its revocation status came later, in those events.
    by_id = sorted((body for _, body, _ in receiver.accepted if "event" not in body), key=lambda b: b["id"])
    assert [dict(body, revoked=None) for body in by_id] == [
        dict(alert, revoked=None) for alert in sorted(alerts, key=lambda alert: alert["id"])
    ]
    bodies = [body for _, body, _ in receiver.accepted]
    news = {body["alert"]["id"]: body for body in bodies if body.get("event") == "revocation"}
    revoked = {alert["id"]: alert for alert in alerts if (alert["revoked"] or {}).get("status") == "revoked"}
    assert revoked and set(news) == set(revoked)
    assert all(news[i]["change"] == "revoked" and news[i]["alert"] == revoked[i] for i in revoked)
    assert set(receiver.counts().values()) == {1}


def test_run_once_killed_during_delivery_loses_nothing(
    served: Any, populated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, scenario = populated
    with BackgroundReceiver(secret="s") as receiver:
        receiver.delay = 60.0  # take the requests, answer nothing
        config = config_with_hook(tmp_path, served(), scenario, receiver.url)
        src = Path(cli.__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=str(src))
        command = [sys.executable, "-m", "ctsentinel", "-c", str(config), "run", "--once"]
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(1200):
                if receiver.requests:
                    break
                time.sleep(0.05)
            assert receiver.requests, "no delivery started"
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
        in_flight = {key for key in receiver.received if is_alert_delivery(key)}
        receiver.delay = 0.0
        code, _, err = run_once(capsys, config)
        assert (code, err) == (0, "")
        alerts = alerts_json(capsys, config)
        for _ in range(100):  # the abandoned requests finish in the receiver's thread
            if sum(alert_counts(receiver).values()) == len(alerts) + len(in_flight):
                break
            time.sleep(0.02)
    counts = alert_counts(receiver)
    delivered = {body["id"] for _, body, _ in receiver.accepted if "event" not in body}
    assert delivered == {alert["id"] for alert in alerts}
    assert in_flight <= set(counts) and len(counts) == len(alerts)  # one key per alert, repeats recognisable
    assert all(counts[key] == (2 if key in in_flight else 1) for key in counts)


def test_run_once_with_the_receiver_down_says_what_is_left(
    served: Any, populated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, scenario = populated
    config = config_with_hook(tmp_path, served(), scenario, f"http://127.0.0.1:{free_port()}/hook")
    started = time.monotonic()
    _, _, err = run_once(capsys, config)
    # [monitor] deliver_timeout = 3 bounds the retrying: the run neither gives up at once nor hangs.
    assert 3 <= time.monotonic() - started < 30
    assert "still pending (last error: webhook http://127.0.0.1:" in err
    assert "cannot connect: Connection refused); kept in the outbox for the next run" in err
    # ... and `alerts` shows the stuck deliveries (text: below the alerts; JSON: on stderr, contract intact).
    assert cli.main(["-c", str(config), "alerts"]) == 0
    out = capsys.readouterr().out
    assert "undelivered:" in out and "delivery of alert #" in out and "pending, next try" in out
    assert cli.main(["-c", str(config), "alerts", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) and "ctsentinel: delivery of alert #" in err


SECRET_PARTS = ("ops", "hunter2", "T0AAA", "XOXB-SECRET", "token=abc", "sig=def")


def test_a_webhook_url_is_never_shown_whole(
    served: Any,
    populated: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Slack-style webhook URL carries its token in its path (and others in the query or as a user and
    password): errors, deliveries.last_error, `alerts`, `run --once` and the log show scheme://host:port/…"""
    _, _, scenario = populated
    port = free_port()
    url = f"http://ops:hunter2@127.0.0.1:{port}/services/T0AAA/B0BBB/XOXB-SECRET?token=abc#sig=def"
    config = config_with_hook(tmp_path, served(), scenario, url)
    caplog.set_level("DEBUG")
    _, out, err = run_once(capsys, config)
    shown = f"webhook http://127.0.0.1:{port}/…: cannot connect: Connection refused"
    assert shown in err
    outputs = [out, err, caplog.text]
    for args in (["alerts"], ["alerts", "--json"], ["logs"], ["logs", "--json"]):
        assert cli.main(["-c", str(config), *args]) == 0
        outputs += capsys.readouterr()
    assert any(shown in text for text in outputs[3:])  # `alerts` names the failing receiver
    with monitor_run.db_of(config) as db:
        stored = db.execute("SELECT channel, last_error FROM deliveries").fetchall()
    assert stored and all(error and shown in error for _, error in stored)
    outputs += [str(row) for row in stored]
    for text in outputs:
        for part in SECRET_PARTS:
            assert part not in text, (part, text[:300])
