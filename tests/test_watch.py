"""Watchlist matching and authorization policy, on certificates built with cryptography and decoded by
ctsentinel.certs (the same path the monitor takes)."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ctsentinel.certs.decode import record_from_der
from ctsentinel.certs.record import CertRecord
from ctsentinel.config import parse_config
from ctsentinel.watch import Watchlist
from ctsentinel.watch.addresses import AddressIndex
from ctsentinel.watch.names import DomainIndex
from ctsentinel.watch.policy import organizations

_KEYS = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
AUTHORIZED_CA, ROGUE_CA, SUBSCRIBER = _KEYS


def spki_hash(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def make_record(
    dns: list[str] = (),  # type: ignore[assignment]
    ips: list[str] = (),  # type: ignore[assignment]
    cn: str | None = None,
    issuer_key: ec.EllipticCurvePrivateKey = ROGUE_CA,
    issuer_org: str = "Financijska agencija",
    subject_key: ec.EllipticCurvePrivateKey = SUBSCRIBER,
) -> CertRecord:
    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Test CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer_org),
        ]
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2025, 2, 1, tzinfo=dt.UTC))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    issuer_hash = bytes.fromhex(spki_hash(issuer_key))
    return record_from_der(cert.public_bytes(serialization.Encoding.DER), issuer_spki_sha256=issuer_hash)


def watchlist(text: str) -> Watchlist:
    return Watchlist.from_config(parse_config(text, Path("/tmp/c.toml")).watches)


CLOUDFLARE = f"""
[[watch]]
name = "cloudflare-dns"
domains = ["one.one.one.one", "cloudflare-dns.com"]
ips = ["1.1.1.1", "1.0.0.1", "2606:4700:4700::/48"]
authorized_issuers = ["sha256:{spki_hash(AUTHORIZED_CA)}"]
"""


@pytest.mark.parametrize(
    ("dns", "ips", "cn", "matched"),
    [
        ([], ["1.1.1.1"], None, ("1.1.1.1",)),  # iPAddress SAN: the Fina certificates
        (["1.1.1.1"], [], None, ("1.1.1.1",)),  # IP text in a dNSName SAN
        (["1.1.1.1."], [], None, ("1.1.1.1",)),  # ... with a trailing dot
        ([], [], "1.1.1.1", ("1.1.1.1",)),  # ... in the subject CN
        ([], ["::ffff:1.1.1.1"], None, ("1.1.1.1",)),  # IPv4-mapped IPv6 iPAddress
        ([], ["2606:4700:4700::1111"], None, ("2606:4700:4700::1111",)),  # inside the watched /48
        (["cloudflare-dns.com"], [], None, ("cloudflare-dns.com",)),
        (["security.cloudflare-dns.com"], [], None, ("security.cloudflare-dns.com",)),  # a subdomain
        (["*.cloudflare-dns.com"], [], None, ("*.cloudflare-dns.com",)),  # a wildcard below
        (["*.one.one.one"], [], None, ("*.one.one.one",)),  # wildcard covering one.one.one.one
        (["Cloudflare-DNS.COM"], [], None, ("cloudflare-dns.com",)),  # case
        (["test1.hr", "test12.hr"], ["1.1.1.1", "2.2.2.2", "10.1.10.10"], None, ("1.1.1.1",)),
    ],
)
def test_every_way_an_address_or_name_appears(
    dns: list[str], ips: list[str], cn: str | None, matched: tuple[str, ...]
) -> None:
    record = make_record(dns, ips, cn)
    (finding,) = watchlist(CLOUDFLARE).match(record)
    assert finding.watch == "cloudflare-dns"
    assert finding.matched == matched
    assert (finding.reason, finding.severity) == ("unauthorized_issuer", "critical")


@pytest.mark.parametrize(
    ("dns", "ips"),
    [
        (["notcloudflare-dns.com", "cloudflare-dns.com.evil.net", "one.one.one"], []),
        (["*.one.one"], []),  # covers one.one.one, not one.one.one.one
        ([], ["1.1.1.2", "1.0.0.0", "2606:4700:4701::1", "::1.1.1.1"]),
        (["1.1.1.1.example"], []),
    ],
)
def test_near_misses_do_not_match(dns: list[str], ips: list[str]) -> None:
    assert watchlist(CLOUDFLARE).match(make_record(dns, ips)) == []


def test_idn_matches_in_either_form() -> None:
    wl = watchlist('[[watch]]\nname = "b"\ndomains = ["bücher.de"]\n')
    assert wl.match(make_record(["xn--bcher-kva.de"]))[0].matched == ("xn--bcher-kva.de",)
    assert wl.match(make_record(["shop.xn--bcher-kva.de"]))
    wl2 = watchlist('[[watch]]\nname = "b"\ndomains = ["xn--bcher-kva.de"]\n')
    assert wl2.match(make_record(["www.xn--bcher-kva.de"]))


def test_subdomains_only_watch() -> None:
    wl = watchlist('[[watch]]\nname = "s"\ndomains = ["*.example.com"]\n')
    assert wl.match(make_record(["example.com"])) == []
    assert wl.match(make_record(["a.example.com"]))
    assert wl.match(make_record(["*.example.com"]))


def test_policy_outcomes() -> None:
    text = f"""
[[watch]]
name = "strict"
domains = ["example.com"]
authorized_issuers = ["sha256:{spki_hash(AUTHORIZED_CA)}", "Example Trust Inc"]
authorized_keys = ["sha256:{spki_hash(SUBSCRIBER)}"]
"""
    wl = watchlist(text)
    by_hash = wl.match(make_record(["example.com"], issuer_key=AUTHORIZED_CA))[0]
    assert (by_hash.reason, by_hash.severity, by_hash.is_alert) == ("authorized", "none", False)
    by_org = wl.match(make_record(["example.com"], issuer_org="Example Trust Inc"))[0]
    assert by_org.reason == "authorized"
    rogue = wl.match(make_record(["example.com"]))[0]
    assert (rogue.reason, rogue.severity) == ("unauthorized_issuer", "critical")
    other_key = wl.match(make_record(["example.com"], issuer_key=AUTHORIZED_CA, subject_key=ROGUE_CA))[0]
    assert (other_key.reason, other_key.severity) == ("unauthorized_key", "high")
    # One-off approval by TBS hash turns an otherwise unauthorized certificate into an authorized sighting.
    record = make_record(["example.com"])
    approved = watchlist(text + f'approved_certificates = ["{record.tbs_sha256}"]\n').match(record)[0]
    assert approved.reason == "authorized"


def test_malformed_from_an_authorized_issuer_is_flagged() -> None:
    record = make_record(["example.com"], issuer_key=AUTHORIZED_CA)
    record.error = "subjectAltName: iPAddress of 5 bytes at offset 412"
    wl = watchlist(
        f'[[watch]]\nname = "m"\ndomains = ["example.com"]\n'
        f'authorized_issuers = ["sha256:{spki_hash(AUTHORIZED_CA)}"]\n'
    )
    (finding,) = wl.match(record)
    assert (finding.reason, finding.severity) == ("malformed", "high")


def test_several_watches_one_finding_each() -> None:
    wl = watchlist(
        '[[watch]]\nname = "a"\nips = ["1.0.0.0/8"]\n[[watch]]\nname = "b"\nips = ["1.1.1.0/24"]\n'
        '[[watch]]\nname = "c"\nips = ["1.1.1.1"]\ndomains = ["test1.hr"]\n'
    )
    findings = wl.match(make_record(["test1.hr"], ["1.1.1.1"]))
    assert [(f.watch, f.matched) for f in findings] == [
        ("a", ("1.1.1.1",)),
        ("b", ("1.1.1.1",)),
        ("c", ("test1.hr", "1.1.1.1")),
    ]
    assert [f.watch for f in wl.match(make_record([], ["1.1.2.3"]))] == ["a"]


def test_address_index_nested_and_overlapping_ranges() -> None:
    nets = [("10.0.0.0/8", 0), ("10.1.0.0/16", 1), ("10.1.2.3/32", 2), ("10.0.0.0/9", 3), ("::/0", 4)]
    index = AddressIndex((ipaddress.ip_network(n), w) for n, w in nets)
    assert index.match(ipaddress.ip_address("10.1.2.3")) == (0, 1, 2, 3)
    assert index.match(ipaddress.ip_address("10.1.2.4")) == (0, 1, 3)
    assert index.match(ipaddress.ip_address("10.200.0.1")) == (0,)
    assert index.match(ipaddress.ip_address("11.0.0.0")) == ()
    assert index.match(ipaddress.ip_address("9.255.255.255")) == ()
    assert index.match(ipaddress.ip_address("2001:db8::1")) == (4,)
    assert index.match(ipaddress.ip_address("::ffff:10.1.2.3")) == (0, 1, 2, 3)


def test_domain_index_against_brute_force() -> None:
    watched = ["example.com", "a.example.com", "*.b.example.com", "org", "x.y.z.net"]
    index = DomainIndex()
    for watch_id, domain in enumerate(watched):
        index.add(domain, watch_id)
    names = [
        "example.com",
        "q.a.example.com",
        "b.example.com",
        "c.b.example.com",
        "*.b.example.com",
        "*.example.com",
        "foo.org",
        "*.y.z.net",
        "y.z.net",
        "*.z.net",
        "com",
        "*.com",
    ]

    def brute(name: str) -> set[int]:
        out = set()
        for watch_id, domain in enumerate(watched):
            below_only = domain.startswith("*.")
            base = domain[2:] if below_only else domain
            if name.startswith("*."):
                covered_base = name[2:]
                # a label under covered_base falls under base, or is base itself
                if (
                    covered_base == base
                    or covered_base.endswith("." + base)
                    or (not below_only and base.partition(".")[2] == covered_base)
                ):
                    out.add(watch_id)
            elif name.endswith("." + base) or (name == base and not below_only):
                out.add(watch_id)
        return out

    for name in names:
        assert set(index.match(name)) == brute(name), name
        assert index.covers(name) == bool(brute(name)), name


def test_covers_is_match_as_a_yes_or_no() -> None:
    # covers() rules most names out by their last label alone; whatever form a name comes in (case, a
    # root dot, a wildcard, an IDN, a label that is not one, an empty string), it must agree with match().
    index = DomainIndex()
    watched = ["example.com", "*.b.example.org", "xn--bcher-kva.example", "localhost"]
    for watch_id, domain in enumerate(watched):
        index.add(domain, watch_id)
    names = [
        "example.com", "EXAMPLE.COM", "www.Example.Com", "example.com.", "a.example.com..", "*.com", "*.COM",
        "example.net", "x.example.comm", "b.example.org", "c.b.example.org", "*.example.org", "*.org",
        "xn--bcher-kva.example", "shop.XN--BCHER-KVA.EXAMPLE", "*.example", "localhost", "LOCALHOST", "", ".",
        "com", "1.1.1.1", "a..example.com", "-x.example.com", "x" * 300 + ".example.com", "ex ample.com",
    ]  # fmt: skip
    for name in names:
        assert index.covers(name) == bool(list(index.match(name))), name


def test_organizations_parse_escaped_dns() -> None:
    assert organizations("CN=Fina RDC 2020,O=Financijska agencija,C=HR") == {"financijska agencija"}
    assert organizations(r"CN=x,O=Acme\, Inc.+OU=y,O=Second") == {"acme, inc.", "second"}
    assert organizations("CN=no org") == frozenset()


def test_watchlist_pickles_for_the_decode_pool() -> None:
    import pickle

    wl = watchlist(CLOUDFLARE)
    clone = pickle.loads(pickle.dumps(wl))
    assert clone.match(make_record([], ["1.1.1.1"]))[0].matched == ("1.1.1.1",)
