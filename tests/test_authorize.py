"""`ctsentinel authorize` writes the SPKI hash of a CA into a watch, keeping the config's comments."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ctsentinel.cli import main
from ctsentinel.config import load_config

CONFIG = """# our production config
database = "sqlite:///ct.db"

[[watch]]
name = "cloudflare-dns"   # the resolver
ips = ["1.1.1.1"]
"""


def ca_pem(tmp_path: Path, common_name: str) -> tuple[Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, hashlib.sha256(spki).hexdigest()


def test_authorize_adds_the_hash_and_keeps_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ctsentinel.toml"
    config.write_text(CONFIG)
    pem, digest = ca_pem(tmp_path, "Example Global G2 TLS RSA SHA256 2020 CA1")
    assert main(["-c", str(config), "authorize", "--watch", "cloudflare-dns", str(pem)]) == 0
    text = config.read_text()
    assert "# our production config" in text and "# the resolver" in text
    (watch,) = load_config(config).watches
    assert [rule.spki_sha256 for rule in watch.authorized_issuers] == [digest]
    # Idempotent: a second run adds nothing.
    assert main(["-c", str(config), "authorize", "--watch", "cloudflare-dns", str(pem)]) == 0
    assert "already authorized" in capsys.readouterr().out
    assert config.read_text() == text


def test_hostile_subject_cannot_inject_config(tmp_path: Path) -> None:
    config = tmp_path / "ctsentinel.toml"
    config.write_text(CONFIG)
    pem, digest = ca_pem(tmp_path, 'Evil\n[[watch]]\nname = "x"\x1b[2J')
    assert (
        main(["-c", str(config), "authorize", "--watch", "cloudflare-dns", str(pem), "--subscriber-key"]) == 0
    )
    loaded = load_config(config)
    assert [w.name for w in loaded.watches] == ["cloudflare-dns"]
    assert loaded.watches[0].authorized_keys == (digest,)
    assert "\x1b" not in config.read_text()


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "ctsentinel.toml"
    config.write_text(CONFIG)
    pem, _ = ca_pem(tmp_path, "CA")
    assert main(["-c", str(config), "authorize", "--watch", "nope", str(pem)]) == 1
    assert capsys.readouterr().err == f"ctsentinel: {config}: no [[watch]] named 'nope'\n"
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert main(["-c", str(config), "authorize", "--watch", "cloudflare-dns", str(junk)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ctsentinel: {junk}: cannot read the certificate") and err.count("\n") == 1
    assert config.read_text() == CONFIG
