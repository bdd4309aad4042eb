"""Reading a populated test log back, independently of the generator: ct.tls for the entries and
cryptography for the certificates (never ctsentinel.certs, never the generator's own DER code)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from ctsentinel.ct.signatures import LogKey
from ctsentinel.ct.sth import SignedTreeHead
from ctsentinel.ct.tiles import decode_leaf_index_extension
from ctsentinel.ct.tls import (
    LogEntryType,
    PrecertExtraData,
    decode_extra_data,
    decode_merkle_tree_leaf,
)
from ctsentinel.testlog.storage import LogStorage


@dataclass
class LoggedEntry:
    index: int
    leaf_input: bytes
    timestamp: int
    precert: bool
    der: bytes  # the certificate, or the precertificate from extra_data
    signed_entry: bytes  # the certificate, or the TBS without poison
    issuer_key_hash: bytes | None
    chain: list[bytes]
    leaf_index: int

    @cached_property
    def cert(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    @cached_property
    def issuer_cert(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.chain[0])

    @property
    def serial_hex(self) -> str:
        n = self.cert.serial_number
        return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big").hex()

    @property
    def issuer(self) -> str:
        return self.cert.issuer.rfc4514_string()

    @cached_property
    def san(self) -> x509.SubjectAlternativeName | None:
        try:
            return self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return None

    @property
    def dns_names(self) -> list[str]:
        return [] if self.san is None else self.san.get_values_for_type(x509.DNSName)

    @property
    def ips(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        if self.san is None:
            return []
        return [
            ip
            for ip in self.san.get_values_for_type(x509.IPAddress)
            if not isinstance(ip, ipaddress._BaseNetwork)
        ]

    @property
    def common_name(self) -> str | None:
        values = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else None

    @property
    def has_sct_list(self) -> bool:
        try:
            self.cert.extensions.get_extension_for_oid(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS)
        except x509.ExtensionNotFound:
            return False
        return True

    @property
    def logged_at(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.timestamp / 1000, datetime.UTC)


def read_log(directory: Path) -> tuple[SignedTreeHead, LogKey, list[LoggedEntry]]:
    storage = LogStorage.open(directory)
    try:
        sth = storage.latest_sth()
        key = storage.signer.public_key
        raw = storage.get_entries(0, sth.tree_size - 1) if sth.tree_size else []
    finally:
        storage.close()
    out = []
    for index, (leaf_input, extra) in enumerate(raw):
        entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
        extra_data = decode_extra_data(entry.entry_type, extra)
        precert = entry.entry_type == LogEntryType.PRECERT_ENTRY
        if isinstance(extra_data, PrecertExtraData):
            der, chain = extra_data.pre_certificate, extra_data.precertificate_chain
        else:
            der, chain = entry.signed_entry, extra_data.certificate_chain
        out.append(
            LoggedEntry(
                index=index,
                leaf_input=leaf_input,
                timestamp=entry.timestamp,
                precert=precert,
                der=der,
                signed_entry=entry.signed_entry,
                issuer_key_hash=entry.issuer_key_hash,
                chain=chain,
                leaf_index=decode_leaf_index_extension(entry.extensions),
            )
        )
    return sth, key, out
