"""CA oversight end to end over real HTTP: the fina-1.1.1.1 test log served on 127.0.0.1, `ctsentinel run
--once` with a [[ca_watch]] on Fina, and what it stored, alerted and delivered, checked against the log as
read back independently."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel.store.keys import issuance_key
from ctsentinel.testlog.server import BackgroundLog
from oversight_world import (
    FINA_DN,
    IGNORE_URL_HOSTS,
    World,
    events,
    expected_flags,
    expected_lint_errors,
    populated_log,
    serve_copy,
)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("oversight") / "log"
    populated_log(directory)
    return directory


def fina_watch(spki: str, *, flags: str = "", extra: str = "") -> str:
    return f"""[[ca_watch]]
name = "fina"
issuers = ["sha256:{spki}"]
ignore_lint = ["{IGNORE_URL_HOSTS}"]
{flags}
{extra}"""


@pytest.fixture
def world(source: Path, tmp_path: Path, testlog_factory: Callable[..., BackgroundLog]) -> World:
    import json

    spki = next(c["spki_sha256"] for c in json.loads((source / "scenario.json").read_text())["cas"]
                if c["id"] == "fina-rdc-2020")  # fmt: skip
    return serve_copy(source, tmp_path, testlog_factory, fina_watch(spki))


def test_a_fina_watch_flags_its_ip_and_internal_name_certificates_and_nothing_else(world: World) -> None:
    assert world.run_once() == 0
    fina = [e for e in world.entries if e.issuer == FINA_DN]
    others = [e for e in world.entries if e.issuer != FINA_DN]
    assert fina and others
    by_issuance: dict[str, list[str]] = {}
    for entry in fina:
        flags = expected_flags(entry) + expected_lint_errors(entry)
        if flags:
            key = f"{entry.serial_hex}:{world.fina_spki}"
            by_issuance[key] = list(dict.fromkeys(by_issuance.get(key, []) + flags))
    # The twelve planted certificates all name 1.1.1.1; ordinary Fina traffic names documentation addresses.
    assert len(by_issuance) > 12
    with world.store() as store:
        alerts = [a for a in store.list_alerts() if a.watch == "fina"]
        stored = store.search(f"issuer:{FINA_DN}", limit=10_000)
    assert all(a.reason == "ca_policy" and a.severity == "high" for a in alerts)
    found = {f"{a.serial}:{a.issuer_spki_sha256}": list(a.findings) for a in alerts}
    assert found == by_issuance
    assert all(a.issuer == FINA_DN for a in alerts)  # nothing of the other CAs
    # Every certificate of the watched CA is stored, flagged or not.
    assert {issuance_key(r.record) for r in stored} == {f"{e.serial_hex}:{world.fina_spki}" for e in fina}
    # The alerts went through the outbox to the channel, as every alert does.
    delivered = [e for e in events(world.config.parent) if e.get("watch") == "fina"]
    assert sorted(e["id"] for e in delivered) == sorted(a.id for a in alerts)
    keys = ["id", "watch", "reason", "severity", "state", "findings", "issuer"]  # DESIGN.md section 5
    assert all(list(e)[:7] == keys for e in delivered)
    # Every certificate of a CA the watch names is linted (the linter's spare-time queue is empty by the
    # end of run --once); nothing else is.
    with world.store() as store:
        linted = store.lint_reports([hashlib.sha256(e.der).digest() for e in world.entries])
        assert store.lint_pending() == 0
    assert set(linted) == {hashlib.sha256(e.der).digest() for e in fina}
    assert all(r.profile.startswith("ov-") for r in linted.values())
    rdctest = [a for a in alerts if "rdctest" in a.dns_names]
    assert len(rdctest) == 1 and "internal_name" in rdctest[0].findings and "rdctest" in rdctest[0].matched
