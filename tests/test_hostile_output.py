"""Certificate fields are attacker-controlled: a hostile certificate is shown escaped in every text output
(alerts, search), kept raw but valid in JSON, and the run still verifies and stores everything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel.cli import main
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from testlog_client import get_json

DANGEROUS = ["\x1b", "\x00", "\x07", "\x9b", "\u202e", "\r"]


def test_hostile_names_are_escaped_everywhere(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str]
) -> None:
    log_dir = tmp_path / "log"
    populate(log_dir, entries=400, scenario="hostile", seed=3)
    log = testlog_factory(log_dir)
    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / "ct.db"}"\n'
        f'[logs]\nlist = "{log.directory / "log_list.json"}"\nstart = "beginning"\n'
        "requests_per_second = 1000\n"
        '[[watch]]\nname = "hostile"\ndomains = ["hostile.example"]\nips = ["198.18.0.0/24"]\n'
    )
    assert main(["-c", str(config), "run", "--once"]) == 0
    capsys.readouterr()

    assert main(["-c", str(config), "alerts", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    expected = json.loads((log_dir / "scenario.json").read_text())["expected_alerts"]
    assert len(alerts) == len(expected) > 5
    raw_names = [n for a in alerts for n in a["dns_names"]]
    assert any("\x1b" in n for n in raw_names), "JSON keeps what the CA signed"

    assert main(["-c", str(config), "alerts"]) == 0
    text = capsys.readouterr().out
    assert "hostile.example" in text
    for char in DANGEROUS:
        assert char not in text, repr(char)
    assert "\\x1b" in text

    assert main(["-c", str(config), "search", "hostile.example"]) == 0
    text = capsys.readouterr().out
    assert "hostile.example" in text
    for char in DANGEROUS:
        assert char not in text, repr(char)


def test_inspect_escapes_control_and_bidi_characters(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect entries` prints JSON lines meant for a terminal: control characters (DEL, C1 such as CSI
    \\x9b), bidi overrides and line separators are written as \\u escapes, so the JSON means exactly what
    the certificate says while the terminal obeys none of it; other Unicode stays readable."""
    log_dir = tmp_path / "log"
    populate(log_dir, entries=400, scenario="hostile", seed=3)
    log = testlog_factory(log_dir)
    size = get_json(log.url + "ct/v1/get-sth")["tree_size"]
    entries: list[object] = []
    while len(entries) < size:
        start = len(entries)
        entries += get_json(log.url + f"ct/v1/get-entries?start={start}&end={size - 1}")["entries"]
    response = tmp_path / "entries.json"
    response.write_text(json.dumps({"entries": entries}))

    assert main(["inspect", "entries", str(response)]) == 0
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == size
    subjects = [r["subject"] or "" for r in records]
    names = [n for r in records for n in r["dns_names"]]
    assert any("\u202e" in s for s in subjects) and any("\x7f" in n for n in names)  # kept, as values
    for char in ["\x7f", "\x9b", "\u202e", "\u2028", "\x1b", "\x00"]:
        assert char not in out, repr(char)
    assert "\\u202e" in out and "\\u007f" in out

    # Letters of any script stay readable (a CA's name in its own language), not \\u00dc.
    pem = tmp_path / "cert.pem"
    pem.write_bytes(_certificate_pem("TÜRKTRUST \u202egpj.exe\x9b31m"))
    assert main(["inspect", "cert", str(pem)]) == 0
    out = capsys.readouterr().out
    assert "TÜRKTRUST \\u202egpj.exe\\u009b31m" in out
    assert json.loads(out)["subject"] == "CN=TÜRKTRUST \u202egpj.exe\x9b31m"


def _certificate_pem(common_name: str) -> bytes:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
