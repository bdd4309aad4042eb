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
    Element,
    elements,
    header,
    read_header,
    read_tlv,
)
from ctsentinel.certs.hosts import Identifiers
from ctsentinel.certs.names import name_info
from ctsentinel.certs.record import CertRecord
from ctsentinel.certs.times import format_time, format_validity
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

# TBSCertificate fields by position once the optional [0] version is set aside (RFC 5280 4.1). Position
# 1, the signature AlgorithmIdentifier, is not read.
_SERIAL_NUMBER = 0
_ISSUER = 2
_VALIDITY = 3
_SUBJECT = 4
_SUBJECT_PUBLIC_KEY_INFO = 5
_FIRST_OPTIONAL = 6  # issuerUniqueID [1], subjectUniqueID [2], extensions [3]

_MAX_ERRORS = 3

Span = tuple[int, int]  # [start, end) offsets into the input


def walk(
    b: bytes,
    sha256_hex: str,
    issuer_spki_sha256: str | None,
    *,
    bare_tbs: bool,
    precert: bool,
    fingerprints: bool = True,
) -> CertRecord:
    """Decode b, a DER Certificate (or a bare TBSCertificate if bare_tbs), never raising DecodeError.

    fingerprints=False leaves the subject key hash and the TBS hash out (None), for a caller that only
    matches names: every field is still read and checked, so the record's error is the same."""
    errors: list[str] = []
    serial = issuer = subject = subject_spki = not_before = not_after = tbs_hash = None
    ids = Identifiers()
    poison = False
    try:
        tbs_start, fields_start, fields_end, complete = _find_tbs(b, bare_tbs, errors)
        fields, all_read = _tbs_fields(b, fields_start, fields_end, errors)
        count = len(fields)
        common_names: tuple[str, ...] = ()
        if count > _SERIAL_NUMBER:
            serial = _serial_number(b, fields[_SERIAL_NUMBER], errors)
        if count > _ISSUER:
            issuer, _ = _name(b, fields[_ISSUER], "issuer", errors, cache=True)
        if count > _VALIDITY:
            not_before, not_after = _validity(b, fields[_VALIDITY], errors)
        if count > _SUBJECT:
            # Nearly every subject is new: caching them would only churn the issuers out of the cache.
            subject, common_names = _name(b, fields[_SUBJECT], "subject", errors, cache=False)
        if count > _SUBJECT_PUBLIC_KEY_INFO:
            subject_spki = _subject_key_hash(b, fields[_SUBJECT_PUBLIC_KEY_INFO], errors, fingerprints)
        extensions = _extensions_field(fields)
        strip: list[Span] = []
        extension_list = (0, 0)
        if extensions is not None:
            poison, extension_list = _read_extensions(b, extensions, ids, strip, errors)
        _add_common_names(ids, common_names, errors)
        if complete and all_read and fingerprints:
            tbs_hash = _tbs_sha256(
                b, tbs_start, (fields_start, fields_end), extensions, extension_list, strip
            )
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


def one_line(errors: list[str]) -> str:
    text = "; ".join(errors[:_MAX_ERRORS])
    if len(errors) > _MAX_ERRORS:
        text += f"; and {len(errors) - _MAX_ERRORS} more"
    if "\n" in text or "\r" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text


# --- the steps of walk, in order ---------------------------------------------------------------------------


def _find_tbs(b: bytes, bare_tbs: bool, errors: list[str]) -> tuple[int, int, int, bool]:
    """(offset of the TBSCertificate, start and end of its fields, whether all of it is there)."""
    where = "TBSCertificate" if bare_tbs else "Certificate"
    size = len(b)
    tag, start, end = read_header(b, 0)
    if tag != SEQUENCE:
        raise DecodeError(f"{where}: expected SEQUENCE, found tag 0x{tag:02x} at offset 0")
    complete = end <= size
    if not complete:
        errors.append(f"{where}: truncated, {end - size} of its {end} bytes missing at offset {size}")
        end = size
    elif end < size:
        errors.append(f"{where}: {size - end} trailing bytes at offset {end}")
    if not bare_tbs and start < end and b[start] in (_VERSION, INTEGER):
        # A TBSCertificate handed over as a certificate (as logs sign precertificates): read it as one.
        errors.append("Certificate: input is a bare TBSCertificate, not a Certificate")
        bare_tbs = True
    if bare_tbs:
        return 0, start, end, complete
    tag, fields_start, fields_end = read_header(b, start)
    if tag != SEQUENCE:
        raise DecodeError(f"TBSCertificate: expected SEQUENCE, found tag 0x{tag:02x} at offset {start}")
    if fields_end > end:
        if complete:
            errors.append(f"TBSCertificate: truncated, ends past its Certificate at offset {end}")
        complete = False
        fields_end = end
    return start, fields_start, fields_end, complete


def _tbs_fields(b: bytes, start: int, end: int, errors: list[str]) -> tuple[list[Element], bool]:
    """The TBSCertificate's fields after the optional version, and whether every one could be read."""
    fields: list[Element] = []
    all_read = True
    try:
        for field in elements(b, start, end):
            fields.append(field)
    except DecodeError as exc:
        errors.append(f"TBSCertificate: {exc}")
        all_read = False
    if fields and fields[0][0] == _VERSION:
        del fields[0]
    return fields, all_read


def _serial_number(b: bytes, field: Element, errors: list[str]) -> str | None:
    """Lowercase hex without leading zero octets (a negative serial, which CAs have issued, as encoded)."""
    tag, offset, start, end = field
    if tag != INTEGER or start == end:
        errors.append(
            f"serialNumber: expected INTEGER, found tag 0x{tag:02x} of {end - start} bytes at offset {offset}"
        )
        return None
    raw = b[start:end]
    if raw[0] & 0x80:
        errors.append(f"serialNumber: negative INTEGER at offset {offset}")
        return raw.hex()
    return (raw.lstrip(b"\0") or b"\0").hex()


def _name(
    b: bytes, field: Element, what: str, errors: list[str], *, cache: bool
) -> tuple[str, tuple[str, ...]]:
    """(RFC 4514 text, common names) of the Name `field`."""
    _, offset, _, end = field
    text, common_names, problem = name_info(b, offset, end, cache)
    if problem is not None:
        errors.append(f"{what}: {problem}")
    return text, common_names


def _validity(b: bytes, field: Element, errors: list[str]) -> tuple[str | None, str | None]:
    """(notBefore, notAfter) as RFC 3339 text; None for each that cannot be read."""
    tag, offset, start, end = field
    if tag != SEQUENCE:
        errors.append(f"validity: expected SEQUENCE, found tag 0x{tag:02x} at offset {offset}")
        return None, None
    both = format_validity(b, start, end)
    if both is not None:
        return both
    not_before = not_after = None
    try:
        tag, time_start, time_end = read_tlv(b, start, end)
    except DecodeError as exc:
        errors.append(f"validity: notBefore: {exc}")
        return None, None
    try:
        not_before = format_time(tag, b[time_start:time_end])
    except DecodeError as exc:
        errors.append(f"validity: notBefore: {exc} at offset {start}")
    after_offset = time_end
    try:
        tag, time_start, time_end = read_tlv(b, after_offset, end)
    except DecodeError as exc:
        errors.append(f"validity: notAfter: {exc}")
        return not_before, None
    try:
        not_after = format_time(tag, b[time_start:time_end])
    except DecodeError as exc:
        errors.append(f"validity: notAfter: {exc} at offset {after_offset}")
    return not_before, not_after


def _subject_key_hash(b: bytes, field: Element, errors: list[str], fingerprint: bool) -> str | None:
    tag, offset, _, end = field
    if tag != SEQUENCE:
        errors.append(f"subjectPublicKeyInfo: expected SEQUENCE, found tag 0x{tag:02x} at offset {offset}")
        return None
    return sha256(b[offset:end]).hexdigest() if fingerprint else None


def _extensions_field(fields: list[Element]) -> Element | None:
    for field in fields[_FIRST_OPTIONAL:]:
        if field[0] == _EXTENSIONS:
            return field
    return None


def _read_extensions(
    b: bytes, field: Element, ids: Identifiers, strip: list[Span], errors: list[str]
) -> tuple[bool, Span]:
    """Names from subjectAltName into ids; the CT poison and SCT list extensions into strip (what the
    log's TBS lacks). Returns whether the poison is there (the input is a precertificate) and the span of
    the Extensions SEQUENCE's content."""
    _, _, start, end = field
    try:
        tag, list_start, list_end = read_tlv(b, start, end)
        if tag != SEQUENCE:
            raise DecodeError(f"expected SEQUENCE, found tag 0x{tag:02x} at offset {start}")
    except DecodeError as exc:
        errors.append(f"extensions: {exc}")
        return False, (0, 0)
    poison = False
    san_seen = False
    try:
        # An Extension that is not a SEQUENCE is skipped by the OID tests below unless it looks like one.
        for _, offset, start, end in elements(b, list_start, list_end):
            oid_length = b[start + 1] if start + 1 < end else 0
            if oid_length == 3 and b.startswith(_SAN_OID, start):
                if san_seen:
                    errors.append(f"extensions: duplicate subjectAltName at offset {offset}")
                san_seen = True
                try:
                    _subject_alt_name(b, start + len(_SAN_OID), end, ids, errors)
                except DecodeError as exc:
                    errors.append(f"subjectAltName: {exc}")
            elif (
                oid_length == 10 and b.startswith(_CT_OID_PREFIX, start) and start + len(_CT_OID_PREFIX) < end
            ):
                kind = b[start + len(_CT_OID_PREFIX)]
                if kind == _CT_POISON:
                    poison = True
                    strip.append((offset, end))
                elif kind == _CT_SCT_LIST:
                    strip.append((offset, end))
    except DecodeError as exc:
        errors.append(f"extensions: {exc}")
    return poison, (list_start, list_end)


def _subject_alt_name(b: bytes, start: int, end: int, ids: Identifiers, errors: list[str]) -> None:
    """The dNSName and iPAddress entries of the subjectAltName whose content after the OID is b[start:end]."""
    tag, value_start, value_end = read_tlv(b, start, end)
    if tag == BOOLEAN:  # critical
        start = value_end
        tag, value_start, value_end = read_tlv(b, start, end)
    if tag != OCTET_STRING:
        raise DecodeError(f"expected OCTET STRING, found tag 0x{tag:02x} at offset {start}")
    tag, names_start, names_end = read_tlv(b, value_start, value_end)
    if tag != SEQUENCE:
        raise DecodeError(f"expected SEQUENCE (GeneralNames), found tag 0x{tag:02x} at offset {value_start}")
    add_name = ids.add_name
    for tag, offset, start, end in elements(b, names_start, names_end):
        if tag == _DNS_NAME:
            raw = b[start:end]
            try:
                problem = add_name(raw.decode("ascii"))
            except UnicodeDecodeError:
                # IA5String allows only ASCII; CAs have put UTF-8 U-labels (and worse) here.
                try:
                    problem = add_name(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    errors.append(
                        f"subjectAltName: dNSName of {end - start} bytes is not text at offset {offset}"
                    )
                    problem = add_name(raw.decode("latin-1"))
            if problem is not None:
                errors.append(f"subjectAltName: dNSName at offset {offset}: {problem}")
        elif tag == _IP_ADDRESS and not ids.add_ip_bytes(b[start:end]):
            errors.append(f"subjectAltName: iPAddress of {end - start} bytes at offset {offset}")


def _add_common_names(ids: Identifiers, common_names: tuple[str, ...], errors: list[str]) -> None:
    for name in common_names:
        # A CN with a space names an organisation or a person, not a host.
        if " " not in name:
            problem = ids.add_name(name)
            if problem is not None:
                errors.append(f"subject: commonName: {problem}")


def _tbs_sha256(
    b: bytes,
    tbs_start: int,
    fields: Span,
    extensions: Element | None,
    extension_list: Span,
    strip: list[Span],
) -> str:
    """Hex SHA-256 of the TBSCertificate as a log has it: without the poison and SCT list extensions."""
    if not strip or extensions is None:
        return sha256(b[tbs_start : fields[1]]).hexdigest()
    return _sha256_without(b, fields, extensions, extension_list, strip)


def _sha256_without(
    b: bytes, fields: Span, extensions: Element, extension_list: Span, strip: list[Span]
) -> str:
    """Hex SHA-256 of the TBSCertificate re-encoded without the extensions in strip (and without [3] if
    none remain): new length headers around the original bytes of everything kept, joined once."""
    fields_start, fields_end = fields
    _, extensions_offset, _, extensions_end = extensions
    list_start, list_end = extension_list
    # [TBS header, fields before [3], [3] header, Extensions header, kept extensions..., fields after]
    pieces = [b"", b[fields_start:extensions_offset], b"", b""]
    kept = 0
    previous_end = list_start
    for stripped_start, stripped_end in strip:
        if stripped_start > previous_end:
            pieces.append(b[previous_end:stripped_start])
            kept += stripped_start - previous_end
        previous_end = stripped_end
    if list_end > previous_end:
        pieces.append(b[previous_end:list_end])
        kept += list_end - previous_end
    extensions_length = 0
    if kept:
        list_header = header(SEQUENCE, kept)
        field_header = header(_EXTENSIONS, len(list_header) + kept)
        pieces[2] = field_header
        pieces[3] = list_header
        extensions_length = len(field_header) + len(list_header) + kept
    pieces.append(b[extensions_end:fields_end])
    before = extensions_offset - fields_start
    after = fields_end - extensions_end
    pieces[0] = header(SEQUENCE, before + extensions_length + after)
    return sha256(b"".join(pieces)).hexdigest()
