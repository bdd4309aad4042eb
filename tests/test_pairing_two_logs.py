"""One issuance, two logs: a precertificate logged in one test log and its final certificate in another
are ONE alert with both sightings (DESIGN.md section 1), read over HTTP by the real monitor."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ctsentinel.cli import main
from ctsentinel.testlog.server import BackgroundLog


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.COUNTRY_NAME, "HR")]
    )
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(1).not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, serial: int, *, precert: bool) -> bytes:
    subscriber = ec.derive_private_key(7, ec.SECP256R1())
    names = [x509.DNSName("test1.hr"), x509.IPAddress(ipaddress.ip_address("1.1.1.1"))]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test1.hr")]))
        .issuer_name(ca.subject).public_key(subscriber.public_key()).serial_number(serial)
        .not_valid_before(dt.datetime(2025, 5, 12, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 5, 12, tzinfo=dt.UTC))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )  # fmt: skip
    if precert:
        builder = builder.add_extension(x509.PrecertPoison(), critical=True)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _submit(log: BackgroundLog, endpoint: str, chain: list[bytes]) -> None:
    body = json.dumps({"chain": [base64.b64encode(c).decode() for c in chain]}).encode()
    request = urllib.request.Request(
        f"{log.url}ct/v1/{endpoint}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _tree_size(log: BackgroundLog) -> int:
    with urllib.request.urlopen(f"{log.url}ct/v1/get-sth", timeout=10) as response:
        return int(json.load(response)["tree_size"])


def _merged_log_list(tmp_path: Path, logs: list[BackgroundLog]) -> Path:
    # Each test log publishes its own list; a real monitor reads one list naming several logs.
    operators = []
    for log in logs:
        listed = json.loads((log.directory / "log_list.json").read_text())
        for operator in listed["operators"]:
            operator["name"] = f"{operator['name']} {log.port}"
            operator["tiled_logs"] = []  # read both over RFC 6962 here; the static side is tested elsewhere
            operators.append(operator)
    merged = dict(listed, operators=operators)
    path = tmp_path / "log_list.json"
    path.write_text(json.dumps(merged))
    return path


def test_precert_in_one_log_and_cert_in_another_are_one_alert(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = testlog_factory(), testlog_factory()
    ca_key, ca = _ca("Fina RDC 2020")
    chain_tail = [ca.public_bytes(serialization.Encoding.DER)]
    serial = 0xD3167EFD77CAD759000000005FC7C672
    _submit(first, "add-pre-chain", [_leaf(ca_key, ca, serial, precert=True), *chain_tail])
    _submit(second, "add-chain", [_leaf(ca_key, ca, serial, precert=False), *chain_tail])
    _submit(second, "add-pre-chain", [_leaf(ca_key, ca, serial + 1, precert=True), *chain_tail])

    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / "ct.db"}"\n'
        f'[logs]\nlist = "{_merged_log_list(tmp_path, [first, second])}"\nstart = "beginning"\n'
        '[[watch]]\nname = "cloudflare-dns"\nips = ["1.1.1.1"]\n'
    )
    # The sequencer publishes a head within its merge delay; --once catches up to the head it sees at start.
    deadline = time.monotonic() + 30
    while [_tree_size(first), _tree_size(second)] != [1, 2]:
        assert time.monotonic() < deadline, "the test logs did not publish their entries"
        time.sleep(0.05)
    assert main(["-c", str(config), "run", "--once"]) == 0
    capsys.readouterr()
    assert main(["-c", str(config), "alerts", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    by_serial = {a["serial"]: a for a in alerts}
    assert set(by_serial) == {"d3167efd77cad759000000005fc7c672", "d3167efd77cad759000000005fc7c673"}
    paired = by_serial["d3167efd77cad759000000005fc7c672"]
    assert sorted((e["log"], e["type"]) for e in paired["entries"]) == sorted(
        [(first.url, "precert"), (second.url, "cert")]
    )
    assert len(paired["sha256"]) == 2 and paired["matched"] == ["1.1.1.1"]
    assert paired["reason"] == "unauthorized_issuer" and paired["severity"] == "critical"
    assert len(by_serial["d3167efd77cad759000000005fc7c673"]["entries"]) == 1
