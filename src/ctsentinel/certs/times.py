"""Validity times (internal): UTCTime and GeneralizedTime as "YYYY-MM-DDTHH:MM:SSZ".

The DER forms (YYMMDDHHMMSSZ, YYYYMMDDHHMMSSZ) take a fast path: one regex match, one formatting.
Forms that DER forbids but real CAs have issued (no seconds, fractional seconds, a +hhmm/-hhmm
offset) are read on a slow path and converted to UTC; anything else is a DecodeError.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ctsentinel.ct.errors import DecodeError

UTC_TIME = 0x17
GENERALIZED_TIME = 0x18

_REST = rb"(?P<hh>\d\d)(?P<mm>\d\d)(?P<ss>\d\d)?(?:[.,](?P<frac>\d+))?(?P<tz>Z|[+-]\d{4})"
_LENIENT = {6: re.compile(rb"(?P<date>\d{6})" + _REST), 8: re.compile(rb"(?P<date>\d{8})" + _REST)}


_UTC_DER_FIELDS = rb"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z"
_UTC_DER = re.compile(_UTC_DER_FIELDS).fullmatch
# A Validity's content when both times are DER UTCTimes (tag 0x17, 13 octets): one match reads both in place.
_TWO_UTC_DER = re.compile(b"\x17\x0d" + _UTC_DER_FIELDS + b"\x17\x0d" + _UTC_DER_FIELDS).fullmatch
_GENERALIZED_DER = re.compile(rb"(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z").fullmatch
# Two-digit fields compare correctly as bytes; February 29th is left to the slow path's calendar.
_LAST_DAY = {
    b"01": b"31", b"02": b"28", b"03": b"31", b"04": b"30", b"05": b"31", b"06": b"30",
    b"07": b"31", b"08": b"31", b"09": b"30", b"10": b"31", b"11": b"30", b"12": b"31",
}  # fmt: skip


def format_time(tag: int, raw: bytes) -> str:
    if tag == UTC_TIME:
        m = _UTC_DER(raw)
        if m is not None:
            text = _utc_time_text(*m.groups())
            if text is not None:
                return text
        return _lenient(raw, 6, "UTCTime")
    if tag == GENERALIZED_TIME:
        m = _GENERALIZED_DER(raw)
        if m is not None:
            yyyy, mo, dd, hh, mi, ss = m.groups()
            last = _LAST_DAY.get(mo)
            if last is not None and b"01" <= dd <= last and hh <= b"23" and mi <= b"59" and ss <= b"59":
                return (b"%s-%s-%sT%s:%s:%sZ" % (yyyy, mo, dd, hh, mi, ss)).decode("ascii")
        return _lenient(raw, 8, "GeneralizedTime")
    raise DecodeError(f"expected UTCTime or GeneralizedTime, found tag 0x{tag:02x}")


def format_validity(b: bytes, start: int, end: int) -> tuple[str, str] | None:
    """(notBefore, notAfter) when the Validity content b[start:end] is two DER UTCTimes of real dates, as
    nearly every certificate's is; None for anything else, which the caller reads a time at a time."""
    m = _TWO_UTC_DER(b, start, end)
    if m is None:
        return None
    fields = m.groups()
    not_before = _utc_time_text(*fields[:6])
    not_after = _utc_time_text(*fields[6:])
    if not_before is None or not_after is None:
        return None
    return not_before, not_after


def _utc_time_text(yy: bytes, mo: bytes, dd: bytes, hh: bytes, mi: bytes, ss: bytes) -> str | None:
    last = _LAST_DAY.get(mo)
    if last is not None and b"01" <= dd <= last and hh <= b"23" and mi <= b"59" and ss <= b"59":
        century = b"19" if yy >= b"50" else b"20"
        return (b"%s%s-%s-%sT%s:%s:%sZ" % (century, yy, mo, dd, hh, mi, ss)).decode("ascii")
    return None


def _lenient(raw: bytes, date_len: int, what: str) -> str:
    m = _LENIENT[date_len].fullmatch(raw)
    if m is None:
        raise DecodeError(f"bad {what} {ascii(raw.decode('latin-1'))[1:-1][:40]}")
    date = m["date"].decode("ascii")
    if date_len == 6:
        year = (1900 if date[0] >= "5" else 2000) + int(date[:2])
        date = date[2:]
    else:
        year = int(date[:4])
        date = date[4:]
    try:
        when = datetime(
            year,
            int(date[:2]),
            int(date[2:4]),
            int(m["hh"]),
            int(m["mm"]),
            int(m["ss"] or b"0"),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise DecodeError(f"bad {what} {raw.decode('ascii')}: {exc}") from None
    tz = m["tz"]
    if tz != b"Z":
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5]))
        try:
            when = when - offset if tz[:1] == b"+" else when + offset
        except OverflowError:
            raise DecodeError(f"bad {what} {raw.decode('ascii')}: out of range") from None
    date_text = f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    return f"{date_text}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}Z"
