"""End to end: every way a watched address or name can appear in a certificate, and every policy
outcome, submitted to a real test log over HTTP and read back by `ctsentinel run --once`."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ctsentinel.cli import main
from ctsentinel.testlog.server import BackgroundLog
from testlog_client import get_json, submit
from testlog_pki import Pki, make_pki

SUBSCRIBER = ec.derive_private_key(1234567, ec.SECP256R1())
OTHER_KEY = ec.derive_private_key(7654321, ec.SECP256R1())


def spki_sha256(key: ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def leaf(
    pki: Pki,
    serial: int,
    *,
    cn: str | None,
    dns: list[str] = (),
    ips: list[str] = (),  # type: ignore[assignment]
    key: ec.EllipticCurvePrivateKey = SUBSCRIBER,
) -> list[bytes]:
    """A precertificate chain: names only where asked (the CN alone, a SAN alone, or both)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(pki.intermediate.cert.subject)
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.PrecertPoison(), critical=True)
    )  # fmt: skip
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    der = builder.sign(pki.intermediate.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return pki.chain(der)


@pytest.fixture
def monitored(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str]
) -> dict[int, dict[str, object]]:
    """Submits the cases, runs the monitor once, returns the alerts by serial."""
    log = testlog_factory()
    rogue, own = make_pki("Rogue"), make_pki("Cloudflare Own")
    own_hash = spki_sha256(own.intermediate.key.public_key())
    cases: list[tuple[Pki, int, dict[str, object]]] = [
        (rogue, 1, {"cn": None, "ips": ["1.1.1.1"]}),                  # iPAddress SAN
        (rogue, 2, {"cn": None, "dns": ["1.1.1.1"]}),                  # IP text in a dNSName SAN
        (rogue, 3, {"cn": "1.1.1.1"}),                                 # IP text in the CN only
        (rogue, 4, {"cn": None, "dns": ["1.1.1.1."]}),                 # ... with a trailing dot
        (rogue, 5, {"cn": None, "ips": ["::ffff:1.1.1.1"]}),           # IPv4-mapped IPv6 iPAddress
        (rogue, 6, {"cn": None, "ips": ["2606:4700:4700::64"]}),       # inside the watched IPv6 /48
        (rogue, 7, {"cn": None, "dns": ["*.cloudflare-dns.com"]}),     # wildcard below a watched domain
        (rogue, 8, {"cn": "security.cloudflare-dns.com"}),             # subdomain, in the CN
        (rogue, 9, {"cn": None, "dns": ["xn--bcher-kva.de"]}),         # IDN watched in its Unicode form
        (rogue, 10, {"cn": None, "dns": ["notcloudflare-dns.com"], "ips": ["1.1.1.2"]}),  # near misses
        (own, 11, {"cn": "one.one.one.one", "ips": ["1.0.0.1"]}),     # authorized issuer and key
        (own, 12, {"cn": "cloudflare-dns.com", "key": OTHER_KEY}),    # authorized issuer, other key
    ]  # fmt: skip
    for pki, serial, fields in cases:
        submit(log.url, leaf(pki, serial, **fields), precert=True)  # type: ignore[arg-type]
    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / "ct.db"}"\n'
        f'[logs]\nlist = "{log.directory / "log_list.json"}"\nstart = "beginning"\n'
        '[[watch]]\nname = "cloudflare-dns"\n'
        'domains = ["one.one.one.one", "cloudflare-dns.com"]\n'
        'ips = ["1.1.1.1", "1.0.0.1", "2606:4700:4700::/48"]\n'
        f'authorized_issuers = ["sha256:{own_hash}"]\n'
        f'authorized_keys = ["sha256:{spki_sha256(SUBSCRIBER.public_key())}"]\n'
        '[[watch]]\nname = "books"\ndomains = ["bücher.de"]\n'
    )
    deadline = time.monotonic() + 30
    while get_json(f"{log.url}ct/v1/get-sth")["tree_size"] < len(cases):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert main(["-c", str(config), "run", "--once"]) == 0
    capsys.readouterr()
    assert main(["-c", str(config), "alerts", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    assert main(["-c", str(config), "search", "one.one.one.one", "--json"]) == 0
    authorized = json.loads(capsys.readouterr().out)
    assert [r["serial"] for r in authorized] == ["0b"], "the authorized sighting is stored and searchable"
    return {int(str(a["serial"]), 16): a for a in alerts}


def test_every_way_a_watched_item_appears_and_every_policy_outcome(
    monitored: dict[int, dict[str, object]],
) -> None:
    expected = {
        1: ("cloudflare-dns", ["1.1.1.1"]),
        2: ("cloudflare-dns", ["1.1.1.1"]),
        3: ("cloudflare-dns", ["1.1.1.1"]),
        4: ("cloudflare-dns", ["1.1.1.1"]),
        5: ("cloudflare-dns", ["1.1.1.1"]),
        6: ("cloudflare-dns", ["2606:4700:4700::64"]),
        7: ("cloudflare-dns", ["*.cloudflare-dns.com"]),
        8: ("cloudflare-dns", ["security.cloudflare-dns.com"]),
        9: ("books", ["xn--bcher-kva.de"]),
        12: ("cloudflare-dns", ["cloudflare-dns.com"]),
    }
    assert set(monitored) == set(expected), "near misses (10) and the authorized sighting (11) raise no alert"
    for serial, (watch, matched) in expected.items():
        alert = monitored[serial]
        assert (alert["watch"], alert["matched"]) == (watch, matched), serial
    for serial in range(1, 10):
        assert (monitored[serial]["reason"], monitored[serial]["severity"]) == (
            "unauthorized_issuer",
            "critical",
        )
    assert (monitored[12]["reason"], monitored[12]["severity"]) == ("unauthorized_key", "high")
