"""CA watches: which CAs a [[ca_watch]] selects and the flags a certificate trips (reserved addresses class by
class, internal names by the Public Suffix List, the BR's 398 days to the second), on built records, on
pkilint's own test precertificates and on the fina-1.1.1.1 test log."""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ctsentinel.certs.decode import record_from_der
from ctsentinel.certs.record import CertRecord
from ctsentinel.testlog.populate import populate
from ctsentinel.watch.ca_policy import (
    ALL_FLAGS,
    MAX_VALIDITY,
    CaFlag,
    CaPolicy,
    CaPolicyFinding,
    LintIgnore,
    RevocationScope,
    TrippedFlag,
    cheap_flags,
)
from ctsentinel.watch.public_suffix import is_internal_name
from ctsentinel.watch.reserved import embedded_ipv4, is_reserved, is_reserved_text
from ctsentinel.watch.severity import Severity
from testlog_populated import read_log

PKILINT = Path(__file__).parent / "data" / "certs" / "corpus" / "pkilint-tls-precerts"

# --- reserved addresses, one class at a time ----------------------------------------------------------------

RESERVED = {
    "RFC 1918": ["10.0.0.0", "10.1.10.10", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1"],
    "loopback": ["127.0.0.1", "127.255.255.254", "::1"],
    "link-local": ["169.254.0.1", "169.254.169.254", "fe80::1", "febf::1"],
    "CGNAT (RFC 6598)": ["100.64.0.0", "100.100.100.100", "100.127.255.255"],
    "documentation": ["192.0.2.1", "198.51.100.7", "203.0.113.255", "2001:db8::1", "2001:db8:ffff::1",
                      "3fff::1",
                      "3fff:fff::1"],
    "benchmarking": ["198.18.0.1", "198.19.255.255", "2001:2::1"],
    "unspecified and this network": ["0.0.0.0", "0.1.2.3", "::"],
    "broadcast and 240/4": ["255.255.255.255", "240.0.0.1", "254.1.1.1"],
    "IETF protocol assignments": ["192.0.0.1", "192.0.0.170"],
    "multicast": ["224.0.0.1", "233.252.0.1", "239.255.255.255", "ff02::1", "ff0e::1", "ff05::2"],
    "ULA": ["fc00::1", "fd12:3456:789a::1"],
    "site-local and unallocated IPv6": ["fec0::1", "4000::1", "8000::1", "100::1", "5f00::1"],
    "IPv4-mapped": ["::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:100.64.0.1", "::ffff:192.0.2.1"],
    "NAT64 and 6to4 of reserved": ["64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:c0a8:101::1",
                                   "2002:a00:1::"],
    "NAT64 local-use": ["64:ff9b:1::1"],
}
GLOBAL = ["1.1.1.1", "1.0.0.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
          "172.15.255.255", "172.32.0.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
          "223.255.255.255", "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:1.1.1.1",
          "64:ff9b::101:101", "2002:101:101::1"]


@pytest.mark.parametrize("kind", sorted(RESERVED))
def test_every_class_of_reserved_address(kind: str) -> None:
    for text in RESERVED[kind]:
        assert is_reserved(ipaddress.ip_address(text)), (kind, text)
        assert is_reserved_text(text)


@pytest.mark.parametrize("text", GLOBAL)
def test_globally_routable_addresses(text: str) -> None:
    assert not is_reserved(ipaddress.ip_address(text))


def test_embedded_ipv4_and_text_that_is_no_address() -> None:
    assert embedded_ipv4(ipaddress.IPv6Address("::ffff:1.2.3.4")) == ipaddress.IPv4Address("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("64:ff9b::102:304")) == ipaddress.IPv4Address("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("2002:102:304::1")) == ipaddress.IPv4Address("1.2.3.4")
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700::1")) is None
    assert not is_reserved_text("not an address") and not is_reserved_text("")


# --- internal names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["intranet", "rdctest", "localhost", "*.corp", "mail.corp", "host.local", "db.internal", "a.lan",
     "printer.home", "x.test", "x.example", "x.invalid", "*.intranet.", "DC01.CORP", ""],
)
def test_internal_names(name: str) -> None:
    assert is_internal_name(name)


@pytest.mark.parametrize(
    "name",
    ["example.com", "*.example.com", "test1.hr", "a.b.co.uk", "co.uk", "com", "www.ck", "xn--p1ai",
     "shop.xn--p1ai", "x.рф", "Example.COM", "example.com.", "foo.home.arpa", "3g2upl4pq6kufc4m.onion",
     "app.dev", "x.zuerich"],
)
def test_names_under_a_public_suffix(name: str) -> None:
    assert not is_internal_name(name)


# --- flags on records ---------------------------------------------------------------------------------------


def record(dns: Sequence[str] = ("www.example.com",), ips: Sequence[str] = (),
           not_before: str | None = "2025-03-01T00:00:00Z",
           not_after: str | None = "2025-05-29T23:59:59Z",
           issuer: str = "CN=Fina RDC 2020,O=Financijska agencija,C=HR", spki: str = "aa" * 32) -> CertRecord:
    return CertRecord(
        serial="01", issuer=issuer, issuer_spki_sha256=spki, subject=None, subject_spki_sha256="bb" * 32,
        dns_names=list(dns), ip_addresses=list(ips), not_before=not_before, not_after=not_after,
        sha256="cc" * 32, tbs_sha256="dd" * 32, precert=True, error=None,
    )


def test_cheap_flags_each() -> None:
    assert cheap_flags(record()) == frozenset()
    assert cheap_flags(record(ips=["1.1.1.1"])) == {CaFlag.IP_ADDRESS}
    assert cheap_flags(record(ips=["1.1.1.1", "10.1.10.10"])) == {CaFlag.IP_ADDRESS, CaFlag.RESERVED_IP}
    assert cheap_flags(record(dns=["test11.hr", "rdctest"])) == {CaFlag.INTERNAL_NAME}
    assert cheap_flags(record(dns=[], ips=["2001:db8::1"])) == {CaFlag.IP_ADDRESS, CaFlag.RESERVED_IP}
    everything = record(dns=["*.corp"], ips=["192.168.0.1"], not_after="2027-03-01T00:00:00Z")
    assert cheap_flags(everything) == set(ALL_FLAGS) - {CaFlag.LINT_ERROR}
    # Only what is asked for is computed.
    assert cheap_flags(everything, frozenset({CaFlag.LONG_VALIDITY})) == {CaFlag.LONG_VALIDITY}
    # Unreadable times trip nothing.
    assert cheap_flags(record(not_before=None)) == frozenset()
    assert cheap_flags(record(not_after="garbage")) == frozenset()


def test_long_validity_is_the_br_rule_to_the_second() -> None:
    assert MAX_VALIDITY.days == 398
    # 2025-01-01T00:00:00 to 2026-02-02T23:59:59 is exactly 398 days, counted inclusively: allowed.
    start = "2025-01-01T00:00:00Z"
    assert not cheap_flags(record(not_before=start, not_after="2026-02-02T23:59:59Z"))
    assert cheap_flags(record(not_before=start, not_after="2026-02-03T00:00:00Z")) == {CaFlag.LONG_VALIDITY}
    assert not cheap_flags(record(not_before=start, not_after="2025-12-31T23:59:59Z"))


def test_long_validity_agrees_with_pkilint_on_its_own_test_precertificates() -> None:
    # pkilint's expected findings: an ERROR at 398 days and one second, only a WARNING at 397 days and one.
    verdicts = {}
    for path in sorted(PKILINT.glob("*.crttest")):
        text = path.read_text()
        pem = text[: text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
        der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
        flagged = CaFlag.LONG_VALIDITY in cheap_flags(record_from_der(der))
        assert flagged == ("certificate_validity_period_exceeds_398_days" in text), path.name
        verdicts[path.name] = flagged
    assert verdicts["ov_pre_certificate__validity_period_one_sec_too_long.crttest"]
    assert not verdicts["dv_pre_certificate__validity_period_397_days_one_sec.crttest"]


# --- CA watches ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issuer:
    spki_sha256: str | None = None
    organization: str | None = None


@dataclass(frozen=True)
class CaWatchConfig:
    name: str
    issuers: tuple[Issuer, ...] = ()
    every_ca: bool = False
    flags: tuple[CaFlag, ...] = field(default=())
    ignore_lint: tuple[LintIgnore, ...] = ()
    revocation: RevocationScope = RevocationScope.ALERTS


FINA = record(dns=["test1.hr", "rdctest"], ips=["1.1.1.1", "10.1.10.10"])
OTHER = dataclasses.replace(FINA, issuer="CN=R10,O=Example Encrypt,C=US", issuer_spki_sha256="ee" * 32)


def test_selection_by_key_hash_organization_or_every_ca() -> None:
    policy = CaPolicy.from_config([
        CaWatchConfig("by-hash", (Issuer(spki_sha256="AA" * 32),)),
        CaWatchConfig("by-org", (Issuer(organization="FINANCIJSKA agencija"),)),
        CaWatchConfig("every", every_ca=True, flags=(CaFlag.IP_ADDRESS,)),
        CaWatchConfig("nobody", (Issuer(organization="Nobody"),)),
    ])
    assert bool(policy) and not CaPolicy.from_config([])
    assert [w.name for w in policy.watching(FINA)] == ["by-hash", "by-org", "every"]
    assert [w.name for w in policy.watching(OTHER)] == ["every"]
    assert [w.name for w in policy.watching(dataclasses.replace(FINA, issuer=None))] == ["by-hash", "every"]
    assert CaPolicy.from_config([]).check(FINA) == []


def test_findings_per_watch_with_its_flags_and_lint_codes() -> None:
    policy = CaPolicy.from_config([
        CaWatchConfig("fina", (Issuer(spki_sha256="aa" * 32),)),  # every flag
        CaWatchConfig("addresses", every_ca=True, flags=(CaFlag.RESERVED_IP,)),
        CaWatchConfig("validity", every_ca=True, flags=(CaFlag.LONG_VALIDITY,)),
    ])
    errors = ["pkix.b", "cabf.a", "cabf.a"]
    findings = policy.check(FINA, errors)
    assert findings == [
        CaPolicyFinding("fina", (
            TrippedFlag(CaFlag.IP_ADDRESS), TrippedFlag(CaFlag.RESERVED_IP),
            TrippedFlag(CaFlag.INTERNAL_NAME),
            TrippedFlag(CaFlag.LINT_ERROR, "cabf.a"), TrippedFlag(CaFlag.LINT_ERROR, "pkix.b"))),
        CaPolicyFinding("addresses", (TrippedFlag(CaFlag.RESERVED_IP),)),
    ]
    assert findings[0].findings == (
        "ip_address", "reserved_ip", "internal_name", "lint_error:cabf.a", "lint_error:pkix.b")
    assert findings[0].severity is Severity.HIGH
    # A clean certificate of a watched CA is watched (kept) but not flagged.
    clean = record()
    assert [w.name for w in policy.watching(clean)] == ["fina", "addresses", "validity"]
    assert policy.check(clean) == []
    assert policy.check(clean, ["cabf.a"]) == [
        CaPolicyFinding("fina", (TrippedFlag(CaFlag.LINT_ERROR, "cabf.a"),))]


def test_when_to_lint() -> None:
    named = CaPolicy.from_config([CaWatchConfig("fina", (Issuer(spki_sha256="aa" * 32),))])
    every = CaPolicy.from_config([CaWatchConfig("all", every_ca=True)])
    no_lint = CaPolicy.from_config([CaWatchConfig("all", every_ca=True, flags=(CaFlag.IP_ADDRESS,))])
    clean, flagged = record(), record(ips=["1.1.1.1"])
    for rec in (clean, flagged):  # a named CA: every certificate
        watches = named.watching(rec)
        assert named.wants_lint(watches, named.judge(rec, watches))
    watches = every.watching(clean)  # "*": only what the cheap flags already flagged
    assert not every.wants_lint(watches, every.judge(clean, watches))
    watches = every.watching(flagged)
    assert every.wants_lint(watches, every.judge(flagged, watches))
    watches = no_lint.watching(flagged)
    assert not no_lint.wants_lint(watches, no_lint.judge(flagged, watches))
    assert not named.wants_lint(named.watching(OTHER), [])


# --- the fina-1.1.1.1 test log ------------------------------------------------------------------------------


def test_fina_scenario_flags_fina_certificates_naming_addresses_or_internal_names(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    populate(directory, entries=600, scenario="fina-1.1.1.1", seed=9)
    scenario = json.loads((directory / "scenario.json").read_text())
    fina_ca = next(c for c in scenario["cas"] if c["id"] == "fina-rdc-2020")
    policy = CaPolicy.from_config([CaWatchConfig("fina", (Issuer(spki_sha256=fina_ca["spki_sha256"]),))])
    issuances = scenario["runs"][0]["issuances"]
    planted = {e["index"] for i in issuances if i["ca"] == "fina-rdc-2020" for e in i["entries"]}
    assert len(planted) == 16  # twelve precertificates, four with their final certificate
    _, _, entries = read_log(directory)
    flagged: dict[int, CaPolicyFinding] = {}
    for entry in entries:
        issuer_spki = hashlib.sha256(entry.issuer_cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()
        rec = record_from_der(entry.der, issuer_spki_sha256=issuer_spki)
        watched = policy.watching(rec)
        assert bool(watched) == (entry.issuer_cert.subject.rfc4514_string() == fina_ca["subject"])
        findings = policy.judge(rec, watched)
        # Read independently of the CertRecord: the certificate's own SAN, through cryptography.
        names_ip = bool(entry.ips) or any(_is_ip(n) for n in entry.dns_names)
        internal = any("." not in n for n in entry.dns_names)
        assert bool(findings) == (bool(watched) and (names_ip or internal)), entry.index
        if findings:
            (finding,) = findings
            flagged[entry.index] = finding
            assert ("ip_address" in finding.findings) == names_ip
            assert ("internal_name" in finding.findings) == internal
            assert "long_validity" not in finding.findings
            reserved = any(is_reserved(ip) for ip in entry.ips)
            assert ("reserved_ip" in finding.findings) == reserved
    assert planted <= set(flagged)  # every planted Fina certificate names 1.1.1.1
    rdctest = [e["index"] for i in scenario["runs"][0]["issuances"] if "rdctest" in i["dns_names"]
               for e in i["entries"]]
    assert rdctest and all("internal_name" in flagged[index].findings for index in rdctest)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
