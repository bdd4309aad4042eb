"""Findings and alerts written with the batch: one alert per issuance and watch, in the contract's shape."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ctsentinel.certs.decode import record_from_der
from ctsentinel.config import IssuerRule, WatchConfig
from ctsentinel.store import Store, StoreError
from ctsentinel.watch import Finding, Watchlist
from ctsentinel.watch.severity import Severity
from store_certs import Feed, issue, log_info, make_ca, pair_entries

DATA = Path(__file__).parent / "data" / "store"
ALERT_KEYS = [
    "id",
    "watch",
    "reason",
    "severity",
    "state",
    "findings",
    "issuer",
    "issuer_spki_sha256",
    "serial",
    "dns_names",
    "ip_addresses",
    "matched",
    "not_before",
    "not_after",
    "sha256",
    "entries",
    "first_seen",
    "revoked",
]


def alerts_json(store: Store, limit: int | None = None) -> list[dict[str, object]]:
    """Alerts as `alerts --json` prints them."""
    return [alert.to_json() for alert in store.list_alerts(limit)]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(f"sqlite:///{tmp_path / 'ct.db'}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def watchlist() -> Watchlist:
    return Watchlist.from_config(
        [
            WatchConfig(
                "cloudflare-dns",
                domains=("one.one.one.one",),
                ips=(ipaddress.ip_network("1.1.1.1/32"),),
                authorized_issuers=(IssuerRule(organization="DigiCert Inc"),),
            ),
            WatchConfig("example", domains=("example.com",)),
        ]
    )


def _der(name: str) -> bytes:
    cert = x509.load_pem_x509_certificate((DATA / name).read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.filterwarnings("ignore:Parsed a serial number")  # the reference test CA has serial 0
def test_real_precert_and_final_cert_are_one_alert(store: Store) -> None:
    """The reference tooling's precertificate and its final certificate (serial 7, same TBS): one alert
    with both fingerprints and both entries, in the alert JSON contract's shape."""
    ca = x509.load_pem_x509_certificate((DATA / "ca-cert.pem").read_bytes())
    spki = hashlib.sha256(
        ca.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    pre_der, cert_der = _der("test-embedded-pre-cert.pem"), _der("test-embedded-cert.pem")
    pre, cert = (
        record_from_der(pre_der, issuer_spki_sha256=spki),
        record_from_der(cert_der, issuer_spki_sha256=spki),
    )
    assert pre.tbs_sha256 == cert.tbs_sha256 and pre.sha256 != cert.sha256
    finding = Finding("ct-test", "unauthorized_issuer", "high", ("Certificate Transparency",))
    feed = Feed(store, log_info("pilot"))
    feed.commit([("precert", pre, pre_der, [finding])], gap=5)
    feed.commit([("x509", cert, cert_der, [finding])])
    [alert] = alerts_json(store)
    assert list(alert) == ALERT_KEYS
    assert alert["id"] == 1 and alert["watch"] == "ct-test"
    assert (alert["reason"], alert["severity"]) == ("unauthorized_issuer", "high")
    assert alert["issuer"] == "L=Erw Wen,ST=Wales,O=Certificate Transparency CA,C=GB"
    assert alert["issuer_spki_sha256"] == "02adddca08b8bf9861f035940c940156d8350fdff899a6239c6bd77255b8f8fc"
    assert alert["serial"] == "07"
    assert (alert["not_before"], alert["not_after"]) == ("2012-06-01T00:00:00Z", "2022-06-01T00:00:00Z")
    assert alert["sha256"] == [
        "9f871dde765f39a0cd2c2ba4f13e6b438e211a96cacd8e4910ad621e89a4c844",  # the precertificate, seen first
        "d9863e419fc90a7faab64952d3d71a389734f82214fb3817cb5c88be81c2f1cb",
    ]
    assert alert["entries"] == [
        {"log": "https://pilot.example/", "index": 0, "type": "precert"},
        {"log": "https://pilot.example/", "index": 6, "type": "cert"},
    ]
    assert alert["matched"] == ["Certificate Transparency"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(alert["first_seen"]))
    assert alert["revoked"] is None
    counts = store.counts()
    assert (counts["alerts"], counts["findings"], counts["certificates"]) == (1, 2, 2)


def test_flipped_serial_is_another_issuance(store: Store) -> None:
    """The grouping key is real: the same certificate with one serial byte changed is a second alert."""
    der = bytearray(_der("test-embedded-cert.pem"))
    record = record_from_der(bytes(der), issuer_spki_sha256=b"\x01" * 32)
    at = bytes(der).index(bytes.fromhex("020107"))  # INTEGER 7, the serial
    der[at + 2] = 8
    flipped = record_from_der(bytes(der), issuer_spki_sha256=b"\x01" * 32)
    assert (record.serial, flipped.serial) == ("07", "08")
    finding = Finding("w", "unauthorized_issuer", "critical", ("x",))
    Feed(store, log_info("flip")).commit(
        [("x509", record, None, [finding]), ("x509", flipped, None, [finding])]
    )
    assert sorted(a["serial"] for a in alerts_json(store)) == ["07", "08"]


def test_generated_issuance_across_logs_with_the_watchlist(store: Store, watchlist: Watchlist) -> None:
    """Findings from the real Watchlist: the precertificate in log A, its certificate in log B and again
    in log A: one alert; its sha256 list and entries grow with each sighting."""
    fina = make_ca("Fina RDC 2020", "Financijska agencija")
    i = issue(fina, ["one.one.one.one"], ["1.1.1.1"], serial=0x0A1B2C)
    a, b = Feed(store, log_info("alpha")), Feed(store, log_info("beta"))
    a.commit([("precert", i.precert, i.precert_der, watchlist.match(i.precert))], gap=2)
    [alert] = alerts_json(store)
    assert alert["sha256"] == [i.precert.sha256] and len(alert["entries"]) == 1
    b.commit([], gap=40)
    b.commit([("x509", i.cert, i.cert_der, watchlist.match(i.cert))])
    a.commit([("x509", i.cert, i.cert_der, watchlist.match(i.cert))])
    [alert] = alerts_json(store)
    assert alert["id"] == 1
    assert (alert["watch"], alert["reason"], alert["severity"]) == (
        "cloudflare-dns",
        "unauthorized_issuer",
        "critical",
    )
    assert alert["serial"] == "0a1b2c" and alert["issuer"] == "CN=Fina RDC 2020,O=Financijska agencija"
    assert alert["issuer_spki_sha256"] == fina.spki_sha256.hex()
    assert alert["matched"] == ["one.one.one.one", "1.1.1.1"]
    assert alert["dns_names"] == ["one.one.one.one"] and alert["ip_addresses"] == ["1.1.1.1"]
    assert alert["sha256"] == [i.precert.sha256, i.cert.sha256]
    assert alert["entries"] == [
        {"log": "https://alpha.example/", "index": 0, "type": "precert"},
        {"log": "https://alpha.example/", "index": 3, "type": "cert"},  # leaf timestamps order sightings
        {"log": "https://beta.example/", "index": 40, "type": "cert"},
    ]
    counts = store.counts()
    assert (counts["alerts"], counts["findings"], counts["certificates"], counts["log_entries"]) == (
        1,
        2,
        2,
        3,
    )


def test_authorized_sighting_is_a_finding_not_an_alert(store: Store, watchlist: Watchlist) -> None:
    digicert = make_ca("DigiCert Global G2", "DigiCert Inc")
    ok = issue(digicert, ["one.one.one.one"], ["1.1.1.1"])
    findings = watchlist.match(ok.cert)
    assert [f.severity for f in findings] == ["none"]
    Feed(store, log_info("gamma")).commit([("x509", ok.cert, ok.cert_der, findings)])
    assert alerts_json(store) == []
    assert store.counts()["findings"] == 1


def test_one_alert_per_watch_and_newest_first(store: Store, watchlist: Watchlist) -> None:
    ca = make_ca("Rogue CA")
    both = issue(ca, ["one.one.one.one", "www.example.com"])
    later = issue(ca, ["mail.example.com"])
    feed = Feed(store, log_info("delta"))
    feed.commit([("x509", both.cert, both.cert_der, watchlist.match(both.cert))])
    feed.commit([("x509", later.cert, later.cert_der, watchlist.match(later.cert))])
    alerts = alerts_json(store)
    assert [(a["id"], a["watch"]) for a in alerts][-2:] in (
        [(1, "cloudflare-dns"), (2, "example")],
        [(2, "example"), (1, "cloudflare-dns")],
    )
    assert (alerts[0]["id"], alerts[0]["watch"], alerts[0]["matched"]) == (3, "example", ["mail.example.com"])
    assert [a["id"] for a in alerts_json(store, limit=1)] == [3]


def test_alert_severity_only_rises(store: Store) -> None:
    i = issue(make_ca("Sev CA"), ["sev.example"])
    feed = Feed(store, log_info("epsilon"))
    feed.commit(
        [("precert", i.precert, i.precert_der, [Finding("w", "unauthorized_key", "high", ("sev.example",))])]
    )
    feed.commit(
        [("x509", i.cert, i.cert_der, [Finding("w", "unauthorized_issuer", "critical", ("x.sev.example",))])]
    )
    [alert] = alerts_json(store)
    assert (alert["severity"], alert["reason"]) == ("critical", "unauthorized_issuer")
    assert alert["matched"] == ["sev.example", "x.sev.example"]


def test_unknown_severity_is_refused_with_nothing_written(store: Store) -> None:
    i = issue(make_ca("Odd CA"), ["odd.example"])
    feed = Feed(store, log_info("zeta"))
    with pytest.raises(StoreError, match="severity 'urgent' is unknown"):
        feed.commit([("x509", i.cert, i.cert_der, [Finding("w", "unauthorized_issuer", "urgent", ())])])
    assert store.counts()["certificates"] == 0


def test_deliveries_are_queued_in_the_batch_transaction(store: Store) -> None:
    """The outbox enqueues inside the commit: a route that fails takes the whole batch with it."""
    i = issue(make_ca("Hook CA"), ["hook.example"])
    seen: list[tuple[str, str | None]] = []

    class Broken:
        key = "broken"

        def accepts(self, severity: Severity, watch: str | None) -> bool:
            seen.append((severity, watch))
            raise RuntimeError("outbox down")

    feed = Feed(store, log_info("eta"))
    findings = [Finding("w", "unauthorized_issuer", "critical", ("hook.example",))]
    with pytest.raises(RuntimeError):
        feed.commit(pair_entries(i, findings), routes=[Broken()])
    assert seen == [("critical", "w")]
    assert alerts_json(store) == [] and store.counts()["log_entries"] == 0
    state = store.log_state(feed.info.log_id)
    assert state is not None and state.position == 0


def test_many_alerts_list_whole(store: Store) -> None:
    """More alerts than one IN list holds: every one comes back with its own certificate."""
    import dataclasses

    base = issue(make_ca("Bulk CA"), ["bulk.example"]).cert
    records = [
        dataclasses.replace(base, serial=f"{n:04x}", sha256=hashlib.sha256(b"%d" % n).hexdigest())
        for n in range(1, 1201)
    ]
    finding = [Finding("bulk", "unauthorized_issuer", "critical", ("bulk.example",))]
    Feed(store, log_info("bulk")).commit([("x509", r, None, finding) for r in records])
    alerts = alerts_json(store)
    assert len(alerts) == 1200
    assert {(a["serial"], a["sha256"][0]) for a in alerts} == {(r.serial, r.sha256) for r in records}  # type: ignore[index]
    assert all(len(a["entries"]) == 1 for a in alerts)  # type: ignore[arg-type]
    assert len(store.search("bulk.example", limit=2000)) == 1200
