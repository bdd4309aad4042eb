"""The certificate walker (internal): one pass over a Certificate or TBSCertificate into a CertRecord.

It reads only what a record needs and by offsets: serial, issuer and subject Names, validity, the
SubjectPublicKeyInfo bytes, and of the extensions only subjectAltName (dNSName and iPAddress entries),
the CT poison and the embedded SCT list, recognised by their raw OID bytes. A problem in one field is
noted and the walk goes on with the next one whose boundaries are still known, so a malformed
certificate still yields every identifier that can be read.
"""

from __future__ import annotations

from hashlib import sha256

from ctsentinel.certs.der import (
    BOOLEAN,
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    encode_length,
    read_header,
    read_tlv,
)
from ctsentinel.certs.hosts import Identifiers
from ctsentinel.certs.names import name_info
from ctsentinel.certs.record import CertRecord
from ctsentinel.certs.times import format_time
from ctsentinel.ct.errors import DecodeError

# Extension OIDs as complete TLVs, so one startswith() both matches the OID and pins its length.
_SAN_OID = b"\x06\x03\x55\x1d\x11"  # 2.5.29.17
_CT_OID_PREFIX = b"\x06\x0a\x2b\x06\x01\x04\x01\xd6\x79\x02\x04"  # 1.3.6.1.4.1.11129.2.4.x
_CT_SCT_LIST = 2  # x = 2: embedded SignedCertificateTimestampList
_CT_POISON = 3  # x = 3: precertificate poison

_VERSION = 0xA0
_EXTENSIONS = 0xA3
_DNS_NAME = 0x82
_IP_ADDRESS = 0x87

_MAX_ERRORS = 3


def walk(
    b: bytes, sha256_hex: str, issuer_spki_sha256: str | None, *, bare_tbs: bool, precert: bool
) -> CertRecord:
    """Decode b, a DER Certificate (or a bare TBSCertificate if bare_tbs), never raising DecodeError."""
    errors: list[str] = []
    serial = issuer = subject = subject_spki = not_before = not_after = tbs_hash = None
    ids = Identifiers()
    cns: tuple[str, ...] = ()
    poison = False
    n = len(b)
    try:
        where = "TBSCertificate" if bare_tbs else "Certificate"
        tag, s, e = read_header(b, 0)
        if tag != SEQUENCE:
            raise DecodeError(f"{where}: expected SEQUENCE, found tag 0x{tag:02x} at offset 0")
        truncated = e > n
        if truncated:
            errors.append(f"{where}: truncated, {e - n} of its {e} bytes missing at offset {n}")
            e = n
        elif e < n:
            errors.append(f"{where}: {n - e} trailing bytes at offset {e}")
        if not bare_tbs and s < e and b[s] in (_VERSION, INTEGER):
            # A TBSCertificate handed over as a certificate (as logs sign precertificates): read it as one.
            errors.append("Certificate: input is a bare TBSCertificate, not a Certificate")
            bare_tbs = True
        if bare_tbs:
            t_start, ts, te = 0, s, e
        else:
            t_start = s
            tag, ts, te = read_header(b, s)
            if tag != SEQUENCE:
                raise DecodeError(f"TBSCertificate: expected SEQUENCE, found tag 0x{tag:02x} at offset {s}")
            if te > e:
                if not truncated:
                    errors.append(f"TBSCertificate: truncated, ends past its Certificate at offset {e}")
                truncated = True
                te = e

        # The TBSCertificate's fields as (tag, offset, content start, content end).
        fields: list[tuple[int, int, int, int]] = []
        i = ts
        try:
            while i < te:
                # Inline reading of the usual length forms (a call per element costs as much as the
                # rest of the loop); anything unusual, or out of bounds, goes through read_tlv.
                tag = b[i]
                ln = b[i + 1]
                if ln < 0x80:
                    s = i + 2
                    e = s + ln
                elif ln == 0x81:
                    s = i + 3
                    e = s + b[i + 2]
                elif ln == 0x82:
                    s = i + 4
                    e = s + (b[i + 2] << 8 | b[i + 3])
                else:
                    e = te + 1
                if e > te or tag & 0x1F == 0x1F:
                    tag, s, e = read_tlv(b, i, te)
                fields.append((tag, i, s, e))
                i = e
        except DecodeError as exc:
            errors.append(f"TBSCertificate: {exc}")
            truncated = True
        except IndexError:
            errors.append(f"TBSCertificate: truncated header at offset {i}")
            truncated = True
        if fields and fields[0][0] == _VERSION:
            del fields[0]
        count = len(fields)

        if count > 0:
            tag, off, s, e = fields[0]
            if tag != INTEGER or s == e:
                errors.append(
                    f"serialNumber: expected INTEGER, found tag 0x{tag:02x} of {e - s} bytes at offset {off}"
                )
            else:
                raw = b[s:e]
                if raw[0] & 0x80:
                    errors.append(f"serialNumber: negative INTEGER at offset {off}")
                    serial = raw.hex()
                else:
                    serial = (raw.lstrip(b"\0") or b"\0").hex()
        if count > 2:
            tag, off, s, e = fields[2]
            issuer, _, err = name_info(b, off, e)
            if err is not None:
                errors.append(f"issuer: {err}")
        if count > 3:
            tag, off, s, e = fields[3]
            not_before, not_after = _validity(b, tag, off, s, e, errors)
        if count > 4:
            tag, off, s, e = fields[4]
            subject, cns, err = name_info(b, off, e, cache=False)
            if err is not None:
                errors.append(f"subject: {err}")
        if count > 5:
            tag, off, s, e = fields[5]
            if tag == SEQUENCE:
                subject_spki = sha256(b[off:e]).hexdigest()
            else:
                errors.append(
                    f"subjectPublicKeyInfo: expected SEQUENCE, found tag 0x{tag:02x} at offset {off}"
                )
        strip: list[tuple[int, int]] = []
        ext_field: tuple[int, int, int, int] | None = None
        for field in fields[6:]:
            if field[0] == _EXTENSIONS:
                ext_field = field
                break
        ext_list = (0, 0)
        if ext_field is not None:
            ext_list, poison = _extensions(b, ext_field, ids, strip, errors)
        for cn in cns:
            # A CN with a space names an organisation or a person, not a host.
            if " " not in cn:
                ids.add_name(cn)

        if not truncated:
            if strip and ext_field is not None:
                tbs_hash = _tbs_sha256_without(b, ts, te, ext_field, ext_list, strip)
            else:
                tbs_hash = sha256(b[t_start:te]).hexdigest()
    except DecodeError as exc:
        errors.append(str(exc))

    return CertRecord(
        serial,
        issuer,
        issuer_spki_sha256,
        subject,
        subject_spki,
        list(ids.dns),
        list(ids.ips),
        not_before,
        not_after,
        sha256_hex,
        tbs_hash,
        precert or poison,
        one_line(errors) if errors else None,
        list(ids.unicode),
    )


def spki_sha256(b: bytes) -> str:
    """Hex SHA-256 of a DER certificate's SubjectPublicKeyInfo as encoded; DecodeError if unreadable."""
    tag, s, e = read_tlv(b, 0, len(b))
    if tag != SEQUENCE:
        raise DecodeError(f"Certificate: expected SEQUENCE, found tag 0x{tag:02x} at offset 0")
    tag, i, te = read_tlv(b, s, e)
    if tag != SEQUENCE:
        raise DecodeError(f"TBSCertificate: expected SEQUENCE, found tag 0x{tag:02x} at offset {s}")
    index = 0
    while i < te:
        tag, s, e = read_tlv(b, i, te)
        if index == 0 and tag == _VERSION:
            index = -1
        elif index == 5:
            if tag != SEQUENCE:
                break
            return sha256(b[i:e]).hexdigest()
        index += 1
        i = e
    raise DecodeError(f"TBSCertificate: no subjectPublicKeyInfo before offset {i}")


def one_line(errors: list[str]) -> str:
    text = "; ".join(errors[:_MAX_ERRORS])
    if len(errors) > _MAX_ERRORS:
        text += f"; and {len(errors) - _MAX_ERRORS} more"
    if "\n" in text or "\r" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text


def _validity(
    b: bytes, tag: int, off: int, s: int, e: int, errors: list[str]
) -> tuple[str | None, str | None]:
    if tag != SEQUENCE:
        errors.append(f"validity: expected SEQUENCE, found tag 0x{tag:02x} at offset {off}")
        return None, None
    not_before = not_after = None
    try:
        tag, ts, te = read_tlv(b, s, e)
    except DecodeError as exc:
        errors.append(f"validity: notBefore: {exc}")
        return None, None
    try:
        not_before = format_time(tag, b[ts:te])
    except DecodeError as exc:
        errors.append(f"validity: notBefore: {exc} at offset {s}")
    try:
        tag, s, e = read_tlv(b, te, e)
    except DecodeError as exc:
        errors.append(f"validity: notAfter: {exc}")
        return not_before, None
    try:
        not_after = format_time(tag, b[s:e])
    except DecodeError as exc:
        errors.append(f"validity: notAfter: {exc} at offset {te}")
    return not_before, not_after


def _extensions(
    b: bytes,
    field: tuple[int, int, int, int],
    ids: Identifiers,
    strip: list[tuple[int, int]],
    errors: list[str],
) -> tuple[tuple[int, int], bool]:
    """Walk the [3] extensions; returns the Extensions SEQUENCE content span and the poison flag."""
    s, e = field[2], field[3]
    poison = False
    try:
        tag, ls, le = read_tlv(b, s, e)
        if tag != SEQUENCE:
            raise DecodeError(f"expected SEQUENCE, found tag 0x{tag:02x} at offset {s}")
    except DecodeError as exc:
        errors.append(f"extensions: {exc}")
        return (0, 0), False
    san_seen = False
    j = ls
    try:
        while j < le:
            # Inline header reading as in walk(); an Extension that is not a SEQUENCE goes through
            # read_tlv too, and is then skipped by the OID tests below unless it looks like one.
            ln = b[j + 1]
            if ln < 0x80:
                es = j + 2
                ee = es + ln
            elif ln == 0x81:
                es = j + 3
                ee = es + b[j + 2]
            elif ln == 0x82:
                es = j + 4
                ee = es + (b[j + 2] << 8 | b[j + 3])
            else:
                ee = le + 1
            if ee > le or b[j] != SEQUENCE:
                _, es, ee = read_tlv(b, j, le)
            oid_len = b[es + 1] if es + 1 < ee else 0
            if oid_len == 3 and b.startswith(_SAN_OID, es):
                if san_seen:
                    errors.append(f"extensions: duplicate subjectAltName at offset {j}")
                san_seen = True
                try:
                    _subject_alt_name(b, es + len(_SAN_OID), ee, ids, errors)
                except DecodeError as exc:
                    errors.append(f"subjectAltName: {exc}")
                except IndexError:
                    errors.append(f"subjectAltName: truncated element in the extension at offset {j}")
            elif oid_len == 10 and b.startswith(_CT_OID_PREFIX, es):
                kind = b[es + len(_CT_OID_PREFIX)]
                if kind == _CT_POISON:
                    poison = True
                    strip.append((j, ee))
                elif kind == _CT_SCT_LIST:
                    strip.append((j, ee))
            j = ee
    except DecodeError as exc:
        errors.append(f"extensions: {exc}")
    except IndexError:
        errors.append(f"extensions: truncated header at offset {j}")
    return (ls, le), poison


def _subject_alt_name(b: bytes, i: int, end: int, ids: Identifiers, errors: list[str]) -> None:
    tag, s, e = read_tlv(b, i, end)
    if tag == BOOLEAN:
        i = e
        tag, s, e = read_tlv(b, i, end)
    if tag != OCTET_STRING:
        raise DecodeError(f"expected OCTET STRING, found tag 0x{tag:02x} at offset {i}")
    tag, gs, ge = read_tlv(b, s, e)
    if tag != SEQUENCE:
        raise DecodeError(f"expected SEQUENCE (GeneralNames), found tag 0x{tag:02x} at offset {s}")
    add_name = ids.add_name
    k = gs
    while k < ge:
        tag = b[k]
        ln = b[k + 1]
        if ln < 0x80:
            s = k + 2
            e = s + ln
        else:
            e = ge + 1
        if e > ge or tag & 0x1F == 0x1F:
            tag, s, e = read_tlv(b, k, ge)
        if tag == _DNS_NAME:
            raw = b[s:e]
            try:
                add_name(raw.decode("ascii"))
            except UnicodeDecodeError:
                # IA5String allows only ASCII; CAs have put UTF-8 U-labels (and worse) here.
                try:
                    add_name(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    errors.append(f"subjectAltName: dNSName of {e - s} bytes is not text at offset {k}")
                    add_name(raw.decode("latin-1"))
        elif tag == _IP_ADDRESS and not ids.add_ip_bytes(b[s:e]):
            errors.append(f"subjectAltName: iPAddress of {e - s} bytes at offset {k}")
        k = e


def _tbs_sha256_without(
    b: bytes,
    ts: int,
    te: int,
    ext_field: tuple[int, int, int, int],
    ext_list: tuple[int, int],
    strip: list[tuple[int, int]],
) -> str:
    """Hex SHA-256 of the TBSCertificate re-encoded without the extensions in strip (and without [3] if
    none remain): new length headers around the original bytes of everything kept, joined once."""
    ls, le = ext_list
    _, ext_off, _, ext_end = ext_field
    # [TBS header, fields before [3], [3] header, Extensions header, kept extensions..., fields after]
    pieces = [b"", b[ts:ext_off], b"", b""]
    kept = 0
    prev = ls
    for a, c in strip:
        if a > prev:
            pieces.append(b[prev:a])
            kept += a - prev
        prev = c
    if le > prev:
        pieces.append(b[prev:le])
        kept += le - prev
    ext_len = 0
    if kept:
        seq_header = b"\x30" + encode_length(kept)
        ext_header = b"\xa3" + encode_length(len(seq_header) + kept)
        pieces[2] = ext_header
        pieces[3] = seq_header
        ext_len = len(ext_header) + len(seq_header) + kept
    pieces.append(b[ext_end:te])
    pieces[0] = b"\x30" + encode_length((ext_off - ts) + ext_len + (te - ext_end))
    return sha256(b"".join(pieces)).hexdigest()
