"""`ctsentinel authorize` writes the SPKI hash of a CA into a watch, keeping the config's comments."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
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


# -- rewriting the config safely ---------------------------------------------------------------------------


def _authorize(config: Path, pem: Path) -> None:
    assert main(["-c", str(config), "authorize", "--watch", "cloudflare-dns", str(pem)]) == 0


def test_authorize_keeps_the_config_mode_and_owner(tmp_path: Path) -> None:
    """The config holds secrets (a webhook URL, an SMTP password): a 0600 file stays 0600, and a file
    owned by the service's user stays that user's when root edits it."""
    config = tmp_path / "ctsentinel.toml"
    config.write_text(CONFIG)
    config.chmod(0o600)
    owner = (os.getuid(), os.getgid())
    if os.geteuid() == 0:
        owner = (65534, 65534)  # nobody: root edits the service user's file
        os.chown(config, *owner)
    pem, digest = ca_pem(tmp_path, "CA")
    previous = os.umask(0o022)
    try:
        _authorize(config, pem)
    finally:
        os.umask(previous)
    after = config.stat()
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == (0o600, *owner)
    assert digest in config.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.pem", "ctsentinel.toml"]  # no temp file left


def test_authorize_follows_a_symlinked_config(tmp_path: Path) -> None:
    """A config that is a symlink (into /etc/ctsentinel, a secrets mount) stays a symlink: its target is
    rewritten, in the target's folder."""
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "ctsentinel.toml"
    target.write_text(CONFIG)
    target.chmod(0o640)
    link = tmp_path / "ctsentinel.toml"
    link.symlink_to(target)
    pem, digest = ca_pem(tmp_path, "CA")
    _authorize(link, pem)
    assert link.is_symlink() and link.resolve() == target
    assert digest in target.read_text() and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in real_dir.iterdir()] == ["ctsentinel.toml"]


def test_authorize_does_not_write_through_a_planted_temp_file(tmp_path: Path) -> None:
    """Whoever can write to the config's folder must not choose where the new config is written: a
    symlink planted at a guessable temporary name is neither written through nor renamed over the config."""
    config = tmp_path / "ctsentinel.toml"
    config.write_text(CONFIG)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "ctsentinel.toml.tmp").symlink_to(victim)
    pem, digest = ca_pem(tmp_path, "CA")
    _authorize(config, pem)
    assert victim.read_text() == "precious\n"
    assert not config.is_symlink() and digest in config.read_text()
