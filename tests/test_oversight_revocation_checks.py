"""Revocation checks inside `run --once` over real HTTP: the fina-1.1.1.1 log's CA repository (CRLs and an
OCSP responder on 127.0.0.1) answering revoked, good, unreachable, stale and contradictory, each recorded
per issuance and in the alerts' `revoked`, and notified only when it is news."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ctsentinel.store import Alert, RevocationState
from ctsentinel.testlog.server import BackgroundLog
from oversight_world import FINA_DN, IGNORE_URL_HOSTS, World, events, populated_log, serve_copy
from testlog_client import set_faults


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("revocation") / "log"
    populated_log(directory)
    return directory


@pytest.fixture
def world(source: Path, tmp_path: Path, testlog_factory: Callable[..., BackgroundLog]) -> World:
    spki = next(c["spki_sha256"] for c in json.loads((source / "scenario.json").read_text())["cas"]
                if c["id"] == "fina-rdc-2020")  # fmt: skip
    ca_watch = f"""[[ca_watch]]
name = "fina"
issuers = ["sha256:{spki}"]
flag = ["ip_address", "internal_name"]
ignore_lint = ["{IGNORE_URL_HOSTS}"]
"""
    made = serve_copy(source, tmp_path, testlog_factory, ca_watch)
    text = made.config.read_text().replace("[monitor]\n", "[monitor]\nrevocation_interval = 1\n")
    made.config.write_text(text)
    return made


def planted(world: World) -> dict[str, dict[str, Any]]:
    """The twelve planted Fina issuances by serial, as scenario.json describes them (with revocation)."""
    return {i["serial"]: i for i in world.scenario["runs"][0]["issuances"] if i["label"].startswith("fina-")}


def checked(world: World) -> tuple[list[Alert], dict[str, RevocationState]]:
    with world.store() as store:
        alerts = [a for a in store.list_alerts() if a.watch == "fina"]
        states = store.revocation_states([f"{a.serial}:{a.issuer_spki_sha256}" for a in alerts])
    return alerts, {key.split(":")[0]: state for key, state in states.items()}


def news(world: World) -> list[tuple[int, str]]:
    return sorted(
        (e["alert"]["id"], e["change"]) for e in events(world.config.parent) if e.get("event") == "revocation"
    )


def words(state: RevocationState) -> dict[str, tuple[str, str | None]]:
    return {w.source: (w.status, w.detail) for w in state.words}


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_revoked_and_good_are_recorded_and_the_revocations_notified(world: World) -> None:
    assert world.run_once() == 0
    alerts, states = checked(world)
    fina = planted(world)
    assert set(fina) <= {a.serial for a in alerts} and len(alerts) > len(fina)
    for alert in alerts:
        state = states[str(alert.serial)]
        assert alert.revoked == state.to_json() and alert.issuer == FINA_DN
        if alert.serial in fina:
            expected = fina[str(alert.serial)]["revocation"]
            assert (state.status, state.source, state.reason) == ("revoked", "crl", expected["reason"])
            assert state.revoked_at == when(expected["revoked_at"])
            assert words(state) == {"crl": ("revoked", None), "ocsp": ("revoked", None)}
            assert state.next_check_at is None  # revocation is final
        else:  # ordinary traffic naming documentation addresses: never revoked
            assert (state.status, state.source, state.reason) == ("good", "ocsp", None)
            assert words(state) == {"crl": ("good", None), "ocsp": ("good", None)}
        assert state.checked_at is not None and not state.contradiction
    ids = {a.id for a in alerts if a.serial in fina}
    assert news(world) == sorted((i, "revoked") for i in ids)
    event = next(e for e in events(world.config.parent) if e.get("event") == "revocation")
    assert list(event) == ["event", "change", "detail", "severity", "time", "alert"]
    assert event["alert"]["revoked"]["status"] == "revoked" and "revoked by its CA" in event["detail"]
    # A second run: nothing is news any more.
    assert world.run_once() == 0
    assert len(news(world)) == len(ids)


def test_a_responder_contradicting_its_crl_is_notified(world: World) -> None:
    set_faults(world.log.url, {"ocsp-lies": None})
    assert world.run_once() == 0
    alerts, states = checked(world)
    fina = planted(world)
    for alert in alerts:
        state = states[str(alert.serial)]
        if alert.serial in fina:
            assert (state.status, state.source, state.contradiction) == ("revoked", "crl", True)
            assert words(state) == {"crl": ("revoked", None), "ocsp": ("good", None)}
        else:
            assert (state.status, state.contradiction) == ("good", False)
    ids = sorted(a.id for a in alerts if a.serial in fina)
    assert news(world) == sorted([(i, "contradiction") for i in ids] + [(i, "revoked") for i in ids])
    lie = next(e for e in events(world.config.parent) if e.get("change") == "contradiction")
    assert "OCSP responder says good for a certificate its CA's CRL lists as revoked" in lie["detail"]


def test_a_stale_crl_still_proves_revocation_but_cannot_say_good(world: World) -> None:
    set_faults(world.log.url, {"stale-crl": None})
    assert world.run_once() == 0
    alerts, states = checked(world)
    fina = planted(world)
    stale = "stale: past its nextUpdate"
    for alert in alerts:
        state = states[str(alert.serial)]
        if alert.serial in fina:
            assert (state.status, state.source) == ("revoked", "crl")
            assert words(state) == {"crl": ("revoked", stale), "ocsp": ("revoked", None)}
        else:
            assert (state.status, state.source) == ("good", "ocsp")
            assert words(state) == {"crl": ("unknown", stale), "ocsp": ("good", None)}


def test_unreachable_is_recorded_retried_and_the_revocation_told_once_learned(world: World) -> None:
    set_faults(world.log.url, {"repository-refused": None})
    assert world.run_once() == 0
    alerts, states = checked(world)
    for alert in alerts:
        state = states[str(alert.serial)]
        assert (state.status, state.source, state.failures) == ("unknown", "crl", 1)
        assert {w.source: w.status for w in state.words} == {"crl": "unreachable", "ocsp": "unreachable"}
        assert state.next_check_at is not None  # asked again later
        assert alert.revoked is not None and alert.revoked["status"] == "unknown"
    assert news(world) == []
    # The repository is back; the next check learns the revocations, which are news now.
    set_faults(world.log.url, {}, ["repository-refused"])
    time.sleep(1.1)  # revocation_interval = 1: the retry is due
    assert world.run_once() == 0
    alerts, states = checked(world)
    fina = planted(world)
    assert all(states[s].status == "revoked" for s in fina)
    assert news(world) == sorted((a.id, "revoked") for a in alerts if a.serial in fina)


def test_an_unavailable_crl_leaves_the_responder_to_answer(world: World) -> None:
    set_faults(world.log.url, {"crl-unavailable": None})
    assert world.run_once() == 0
    _, states = checked(world)
    for serial in planted(world):
        state = states[serial]
        assert (state.status, state.source) == ("revoked", "ocsp")
        assert words(state)["crl"][0] == "unreachable" and "HTTP 503" in str(words(state)["crl"][1])
