"""`ctsentinel authorize`: record the SPKI hash of a CA (or a subscriber key) in a watch of the config.

Nobody should copy 64 hex digits by hand: a typo there silently authorizes nothing (or the wrong CA). This
reads the PEM, computes SHA-256 of each SubjectPublicKeyInfo, and edits the config in place with tomlkit so
the user's comments and layout survive. The edited config is validated before it is written.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

import tomlkit
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from tomlkit.exceptions import TOMLKitError

from ctsentinel.config import ConfigError, parse_config
from ctsentinel.errors import UserError
from ctsentinel.terminal import safe_text

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.S)


def spki_hashes(path: Path) -> list[tuple[str, str]]:
    """(hex SHA-256 of the SPKI, a label) for every certificate or public key in a PEM or DER file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    blocks = [(m.group(1).decode(), m.group(0)) for m in _PEM_BLOCK.finditer(data)] or [("DER", data)]
    found = []
    for kind, block in blocks:
        key: PublicKeyTypes
        try:
            if kind == "CERTIFICATE":
                cert = x509.load_pem_x509_certificate(block)
                key, label = cert.public_key(), cert.subject.rfc4514_string()
            elif kind == "PUBLIC KEY":
                key, label = serialization.load_pem_public_key(block), "public key"
            elif kind == "DER":
                cert = x509.load_der_x509_certificate(block)
                key, label = cert.public_key(), cert.subject.rfc4514_string()
            else:
                continue
        except ValueError as exc:
            raise UserError(f"{path}: cannot read the {kind.lower()}: {exc}") from None
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        found.append((hashlib.sha256(spki).hexdigest(), label))
    if not found:
        raise UserError(f"{path}: no certificate or public key found")
    return found


def _comment(label: str) -> str:
    # The label comes from a certificate: keep it on one line, printable, and short, or it could end the
    # TOML comment and inject config.
    return safe_text(label).replace("\n", " ")[:120]


def rewrite(path: Path, data: bytes) -> None:
    """Replace the file at `path` (its target, if it is a symlink) by `data` atomically, keeping its mode
    and, as far as we may, its owner and group.

    The config holds secrets (a webhook URL, an SMTP password), and its folder may be writable by others
    than its owner: the new text goes to a temporary file that mkstemp creates in the same folder under an
    unpredictable name (O_EXCL, mode 0600, so nothing planted there is written through) and is given the
    config's mode and owner before anything is written into it; then it is renamed over the config. A
    reader sees the old config or the new one, never a part, and never a more readable one.
    """
    target = Path(os.path.realpath(path))
    try:
        before = target.stat()
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{path}: cannot rewrite the config: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            _take_owner(file.fileno(), before)
            os.fchmod(file.fileno(), stat.S_IMODE(before.st_mode))
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise UserError(f"{path}: cannot rewrite the config: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash only once the folder is synced
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _take_owner(fd: int, before: os.stat_result) -> None:
    """Give the new file the old one's owner and group; a user who is not root may only keep the group
    (and only a group of theirs), and then the file becomes theirs, as an editor's save would."""
    for uid, gid in ((before.st_uid, before.st_gid), (-1, before.st_gid)):
        try:
            os.fchown(fd, uid, gid)
            return
        except PermissionError:
            continue


def run(args: argparse.Namespace) -> int:
    config_path = Path(args.config)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: config file not found (pass -c FILE)") from None
    parse_config(text, config_path)  # refuse to edit a config that is already broken
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    watches = [w for w in document.get("watch", []) if w.get("name") == args.watch]
    if not watches:
        raise UserError(f"{config_path}: no [[watch]] named {args.watch!r}")
    (watch,) = watches
    key = "authorized_keys" if args.subscriber_key else "authorized_issuers"
    if key not in watch:
        watch[key] = tomlkit.array()
    entries = watch[key]
    present = {str(v).lower() for v in entries}
    added = []
    for file in args.files:
        for digest, label in spki_hashes(Path(file)):
            value = f"sha256:{digest}"
            if value in present:
                print(f"already authorized: {value}  ({safe_text(label)})")
                continue
            entries.add_line(value, comment=_comment(label))
            present.add(value)
            added.append((value, label))
    new_text = tomlkit.dumps(document)
    parse_config(new_text, config_path)  # what we write must load
    if added and not args.dry_run:
        rewrite(config_path, new_text.encode("utf-8"))
    for value, label in added:
        verb = "would add" if args.dry_run else "added"
        print(f"{verb} to [[watch]] {safe_text(args.watch)} {key}: {value}  ({safe_text(label)})")
    return 0
