"""Scenarios: the log holds exactly what scenario.json says was planted, and nothing else a watch would see.

fina-1.1.1.1 is checked against the incident's published facts (tests/data/testlog-populate/facts.json):
twelve Fina RDC 2020 precertificates for iPAddress 1.1.1.1 with junk names, dated Feb 2024 - Aug 2025,
the three reported serials last; Cloudflare's legitimate certificates from the authorized CA beside them.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ctsentinel.errors import UserError
from ctsentinel.testlog.populate import populate
from testlog_populated import LoggedEntry, read_log

DATA = Path(__file__).parent / "data" / "testlog-populate"
FACTS = json.loads((DATA / "facts.json").read_text())
FINA_DN = "CN=Fina RDC 2020,O=Financijska agencija,C=HR"
FINA_ROOT_DN = "CN=Fina Root CA,O=Financijska agencija,C=HR"
AUTHORIZED_DN = "CN=Example Global G2 TLS RSA SHA256 2020 CA1,O=Example Inc,C=US"
JUNK = {"test1.hr", "test11.hr", "test12.hr"}
FEB_2024 = datetime.datetime(2024, 2, 1, tzinfo=datetime.UTC)
SEP_2025 = datetime.datetime(2025, 9, 1, tzinfo=datetime.UTC)
ENTRIES = 1200


def _spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


@pytest.fixture(scope="module")
def fina(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[LoggedEntry]]:
    directory = tmp_path_factory.mktemp("fina") / "log"
    report = populate(directory, entries=ENTRIES, scenario="fina-1.1.1.1", seed=2)
    assert report.entries_added == ENTRIES and report.planted == 22
    data = json.loads((directory / "scenario.json").read_text())
    return directory, data, read_log(directory)[2]


def _watch_hits(e: LoggedEntry, watch: dict[str, Any]) -> list[str]:
    networks = [ipaddress.ip_network(n) for n in watch["ips"]]
    names = [*e.dns_names, *([e.common_name] if e.common_name else [])]
    hits = [n for n in names if any(n == d or n.endswith("." + d) for d in watch["domains"])]
    hits += [str(ip) for ip in e.ips if any(ip.version == n.version and ip in n for n in networks)]
    return hits


def test_twelve_fina_precertificates_for_1_1_1_1(
    fina: tuple[Path, dict[str, Any], list[LoggedEntry]],
) -> None:
    _, _, logged = fina
    rogue = [e for e in logged if e.issuer == FINA_DN and ipaddress.ip_address("1.1.1.1") in e.ips]
    precerts = [e for e in rogue if e.precert]
    assert len(precerts) == 12
    assert 0 < len(rogue) - 12 < 12  # some final certificates too
    for e in rogue:
        assert set(e.dns_names) <= JUNK | {"rdctest"}
        assert e.common_name in JUNK
        assert FEB_2024 <= e.cert.not_valid_before_utc < SEP_2025
        assert FEB_2024 <= e.logged_at < SEP_2025
        assert e.issuer_cert.subject.rfc4514_string() == FINA_DN
        assert e.cert.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)[0].value == (
            "Financijska agencija"
        )
        e.cert.verify_directly_issued_by(e.issuer_cert)
        root = x509.load_der_x509_certificate(e.chain[-1])
        assert root.subject.rfc4514_string() == FINA_ROOT_DN
        e.issuer_cert.verify_directly_issued_by(root)
    all_ips = {str(ip) for e in precerts for ip in e.ips}
    assert {"1.1.1.1", "2.2.2.2"} <= all_ips
    assert any(ipaddress.ip_address(ip) in ipaddress.ip_network("10.0.0.0/8") for ip in all_ips)
    assert any("." not in n for e in precerts for n in e.dns_names)  # a bare internal hostname
    # every final certificate completes one of the twelve
    finals = [e for e in rogue if not e.precert]
    serials = {e.cert.serial_number for e in precerts}
    assert all(e.cert.serial_number in serials and e.has_sct_list for e in finals)


def test_the_reported_serials_and_the_serial_layout(
    fina: tuple[Path, dict[str, Any], list[LoggedEntry]],
) -> None:
    _, _, logged = fina
    precerts = sorted(
        (e for e in logged if e.precert and e.issuer == FINA_DN and ipaddress.ip_address("1.1.1.1") in e.ips),
        key=lambda e: e.cert.not_valid_before_utc,
    )
    reported = FACTS["reported_certificates_(precertificates)"]
    assert [e.serial_hex for e in precerts[-3:]] == [r["serial"].replace(":", "") for r in reported]
    for e, fact in zip(precerts[-3:], reported, strict=True):
        assert e.common_name == fact["subject_cn"]
        sans = [f"dNSName:{n}" for n in e.dns_names] + [f"iPAddress:{ip}" for ip in e.ips]
        assert sans == fact["san"]
    # 8 random bytes, 4 zero bytes, a 4-byte counter that grows with time (facts.json notes)
    counters = []
    for e in precerts:
        raw = e.cert.serial_number.to_bytes(16, "big")
        assert raw[8:12] == b"\x00\x00\x00\x00" and raw[0] != 0
        counters.append(int.from_bytes(raw[12:], "big"))
    assert counters == sorted(counters) and len(set(counters)) == 12


def test_the_legitimate_certificates_come_from_the_authorized_ca(
    fina: tuple[Path, dict[str, Any], list[LoggedEntry]],
) -> None:
    _, data, logged = fina
    (watch,) = data["watches"]
    assert watch["name"] == "cloudflare-dns"
    legit = [e for e in logged if "cloudflare-dns.com" in e.dns_names]
    assert len(legit) == 6  # three renewals, each a precertificate and its certificate
    for e in legit:
        assert e.issuer == AUTHORIZED_DN
        assert set(e.dns_names) == {"cloudflare-dns.com", "*.cloudflare-dns.com", "one.one.one.one"}
        assert {str(ip) for ip in e.ips} == {
            "1.1.1.1",
            "1.0.0.1",
            "2606:4700:4700::1111",
            "2606:4700:4700::1001",
        }
        assert watch["authorized_issuers"] == [f"sha256:{_spki_sha256(e.issuer_cert)}"]
    authorized = next(c for c in data["cas"] if c["subject"] == AUTHORIZED_DN)
    assert authorized["id"] in data["runs"][0]["authorized_cas"]
    fina_ca = next(c for c in data["cas"] if c["subject"] == FINA_DN)
    assert data["runs"][0]["rogue_cas"] == [fina_ca["id"]]


def test_scenario_json_matches_the_log_entry_for_entry(
    fina: tuple[Path, dict[str, Any], list[LoggedEntry]],
) -> None:
    _, data, logged = fina
    (run,) = data["runs"]
    assert len(run["planted"]) == 22
    for planted in run["planted"]:
        e = logged[planted["index"]]
        assert hashlib.sha256(e.der).hexdigest() == planted["sha256"]
        assert ("precert" if e.precert else "cert") == planted["type"]
        assert e.timestamp == planted["timestamp"]
        assert e.serial_hex == planted["serial"]
        assert e.issuer == planted["issuer"]
        assert _spki_sha256(e.issuer_cert) == planted["issuer_spki_sha256"]
        assert _spki_sha256(e.cert) == planted["subject_spki_sha256"]
        assert e.cert.subject.rfc4514_string() == planted["subject"]
        assert e.dns_names == planted["dns_names"]
        assert [str(ip) for ip in e.ips] == planted["ip_addresses"]
        assert e.cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ") == planted["not_before"]
        assert e.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ") == planted["not_after"]
        tbs = e.signed_entry if e.precert else e.cert.tbs_precertificate_bytes if e.has_sct_list else None
        if tbs is not None:
            assert hashlib.sha256(tbs).hexdigest() == planted["tbs_sha256"]
        assert planted["alert"] == (planted["role"] == "rogue")


def test_expected_alerts_are_exactly_the_unauthorized_issuances(
    fina: tuple[Path, dict[str, Any], list[LoggedEntry]],
) -> None:
    """Scan the log as a monitor would: every watched match is planted; the rogue ones are the alerts."""
    _, data, logged = fina
    (watch,) = data["watches"]
    authorized = {h.removeprefix("sha256:") for h in watch["authorized_issuers"]}
    issuances: dict[tuple[str, str], list[int]] = {}
    for e in logged:
        if _watch_hits(e, watch) and _spki_sha256(e.issuer_cert) not in authorized:
            issuances.setdefault((_spki_sha256(e.issuer_cert), e.serial_hex), []).append(e.index)
    expected = {
        (a["issuer_spki_sha256"], a["serial"]): [x["index"] for x in a["entries"]]
        for a in data["expected_alerts"]
    }
    assert issuances == expected
    assert len(expected) == 12
    assert all(
        a["watch"] == "cloudflare-dns" and a["matched"] == ["1.1.1.1"] for a in data["expected_alerts"]
    )
    facts = {a["facts"]["serial"].replace(":", "") for a in data["expected_alerts"] if a["facts"]["reported"]}
    assert facts == {r["serial"].replace(":", "") for r in FACTS["reported_certificates_(precertificates)"]}


def test_planted_positions_follow_the_dates(fina: tuple[Path, dict[str, Any], list[LoggedEntry]]) -> None:
    _, data, logged = fina
    indexes = [p["index"] for p in data["runs"][0]["planted"]]
    assert indexes == sorted(indexes)
    for p in data["runs"][0]["planted"]:
        neighbours = [logged[i].timestamp for i in (p["index"] - 1, p["index"] + 1) if 0 <= i < len(logged)]
        # within a few entries' worth of the ordinary timeline (about 12 hours per entry here)
        assert all(abs(t - p["timestamp"]) < 3 * 86_400_000 for t in neighbours)


def test_same_seed_plants_at_the_same_indexes(
    tmp_path: Path, fina: tuple[Path, dict[str, Any], list[LoggedEntry]]
) -> None:
    _, data, _ = fina
    populate(tmp_path / "again", entries=ENTRIES, scenario="fina-1.1.1.1", seed=2)
    again = json.loads((tmp_path / "again" / "scenario.json").read_text())
    key = ("index", "type", "serial", "dns_names", "ip_addresses", "not_before", "timestamp", "label")
    assert [[p[k] for k in key] for p in again["runs"][0]["planted"]] == [
        [p[k] for k in key] for p in data["runs"][0]["planted"]
    ]
    # the planted subscriber keys are deterministic too, so authorized_keys can be configured
    assert [p["subject_spki_sha256"] for p in again["runs"][0]["planted"]] == [
        p["subject_spki_sha256"] for p in data["runs"][0]["planted"]
    ]


def test_refusals(tmp_path: Path, fina: tuple[Path, dict[str, Any], list[LoggedEntry]]) -> None:
    directory, _, _ = fina
    with pytest.raises(UserError, match="already planted"):
        populate(directory, entries=100, scenario="fina-1.1.1.1", seed=3)
    with pytest.raises(UserError, match="too few"):
        populate(tmp_path / "small", entries=21, scenario="fina-1.1.1.1", seed=3)
    # exactly enough room: every entry is planted, still in date order
    report = populate(tmp_path / "tight", entries=22, scenario="fina-1.1.1.1", seed=3)
    assert report.tree_size == 22 and report.planted == 22


# --- hostile ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[LoggedEntry]]:
    directory = tmp_path_factory.mktemp("hostile") / "log"
    populate(directory, entries=200, scenario="hostile", seed=1)
    raw = (directory / "scenario.json").read_bytes()
    assert raw.isascii()  # control characters and Unicode are escaped in the file itself
    return directory, json.loads(raw), read_log(directory)[2]


def test_hostile_names_are_logged_verbatim(hostile: tuple[Path, dict[str, Any], list[LoggedEntry]]) -> None:
    _, data, logged = hostile
    planted = {p["label"]: p for p in data["runs"][0]["planted"]}
    by_label = {label: logged[p["index"]] for label, p in planted.items()}
    ansi = by_label["hostile-ansi-escapes"]
    assert ansi.dns_names[0] == "\x1b[2J\x1b[31mowned\x1b[0m.hostile.example"
    assert ansi.common_name == ansi.dns_names[0]
    assert "<script>alert(document.domain)</script>.hostile.example" in by_label["hostile-html"].dns_names
    assert "nul\x00byte.hostile.example" in by_label["hostile-control-characters"].dns_names
    assert "new\nline.hostile.example" in by_label["hostile-control-characters"].dns_names
    assert max(len(n) for n in by_label["hostile-long-names"].dns_names) > 3000
    assert len(by_label["hostile-many-sans"].dns_names) == 400
    assert by_label["hostile-bidi-cn"].common_name.startswith("\u202e")
    assert "198.18.0.66" in by_label["hostile-ip-text-in-dns"].dns_names
    for label, p in planted.items():
        e = by_label[label]
        assert hashlib.sha256(e.der).hexdigest() == p["sha256"]
        e.cert.verify_directly_issued_by(e.issuer_cert)  # hostile, but really issued by the CA
        assert p["alert"] and p["watches"] == ["hostile"], label


def test_hostile_malformed_certificates(hostile: tuple[Path, dict[str, Any], list[LoggedEntry]]) -> None:
    _, data, logged = hostile
    planted = {p["label"]: logged[p["index"]] for p in data["runs"][0]["planted"]}
    bad_key = planted["hostile-invalid-public-key"]
    with pytest.raises(ValueError):
        bad_key.cert.public_key()
    assert [p["malformation"] for p in data["runs"][0]["planted"] if "malformation" in p] == [
        "invalid-ec-point"
    ]
    assert planted["hostile-empty-san"].dns_names == [] and planted["hostile-empty-san"].san is not None
    assert planted["hostile-empty-dns-name"].dns_names == [""]
    inverted = planted["hostile-inverted-validity"].cert
    assert inverted.not_valid_after_utc < inverted.not_valid_before_utc
    # UTF-8 bytes inside an IA5String dNSName
    assert b"b\xc3\xbccher.hostile.example" in planted["hostile-utf8-in-ia5string"].der
