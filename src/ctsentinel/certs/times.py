"""Validity times (internal): UTCTime and GeneralizedTime as "YYYY-MM-DDTHH:MM:SSZ".

The DER forms (YYMMDDHHMMSSZ, YYYYMMDDHHMMSSZ) take a fast path of string slicing. Forms that DER
forbids but real CAs have issued (no seconds, fractional seconds, a +hhmm/-hhmm offset) are read on a
slow path and converted to UTC; anything else is a DecodeError.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ctsentinel.ct.errors import DecodeError

UTC_TIME = 0x17
GENERALIZED_TIME = 0x18

_REST = rb"(?P<hh>\d\d)(?P<mm>\d\d)(?P<ss>\d\d)?(?:[.,](?P<frac>\d+))?(?P<tz>Z|[+-]\d{4})"
_LENIENT = {6: re.compile(rb"(?P<date>\d{6})" + _REST), 8: re.compile(rb"(?P<date>\d{8})" + _REST)}


def format_time(tag: int, raw: bytes) -> str:
    if tag == UTC_TIME:
        if len(raw) == 13 and raw[12] == 0x5A and raw[:12].isdigit():
            s = raw.decode("ascii")
            if _in_range(s, 0):
                century = "19" if s[0] >= "5" else "20"
                return f"{century}{s[0:2]}-{s[2:4]}-{s[4:6]}T{s[6:8]}:{s[8:10]}:{s[10:12]}Z"
        return _lenient(raw, 6, "UTCTime")
    if tag == GENERALIZED_TIME:
        if len(raw) == 15 and raw[14] == 0x5A and raw[:14].isdigit():
            s = raw.decode("ascii")
            if _in_range(s, 2):
                return f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[8:10]}:{s[10:12]}:{s[12:14]}Z"
        return _lenient(raw, 8, "GeneralizedTime")
    raise DecodeError(f"expected UTCTime or GeneralizedTime, found tag 0x{tag:02x}")


def _in_range(s: str, o: int) -> bool:
    # Two-digit fields compare correctly as strings; day-of-month overflow (Feb 30) is left to the slow path.
    return (
        "01" <= s[o + 2 : o + 4] <= "12"
        and "01" <= s[o + 4 : o + 6] <= "28"
        and s[o + 6 : o + 8] <= "23"
        and s[o + 8 : o + 10] <= "59"
        and s[o + 10 : o + 12] <= "59"
    )


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
