"""A log's answer to a request for entries, from the bytes it sent to (leaf_input, extra_data) pairs.

The log clients (ctsentinel.logs) only download: an `EntryBody` is what one request returned, unparsed.
Turning it into entries is pure work on bytes, done here so that it can run anywhere, in particular in the
monitor's decode processes rather than in the process that holds the connections and the compact ranges.

RFC 6962 get-entries answers are JSON documents of base64 strings; msgspec decodes the document and the
base64 of a typed schema in one pass, four to five times faster than json plus base64 (bench/certs_bench.py
and the monitor benchmark measured it). A document msgspec refuses is parsed again the slow way, which
either accepts it (the two agree on everything a log should send) or gives the precise error message.
Static-ct data tiles are cut with ct.tilescan; their entries' extra_data is rebuilt from the issuer
certificates, which the caller fetched (an `IssuersMissing` error names the ones it still needs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.sth import parse_get_entries_response
from ctsentinel.ct.tilescan import ExtraDataBuilder, scan_data_tile

EntryPair = tuple[bytes, bytes]  # leaf_input (the MerkleTreeLeaf as hashed), extra_data (RFC 6962)


class EntryApi(StrEnum):
    RFC6962 = "rfc6962"  # a get-entries JSON document
    STATIC_CT = "static-ct"  # a data tile


@dataclass(frozen=True, slots=True)
class EntryBody:
    """What one request for entries [start, start + asked) returned, as the log sent it."""

    api: EntryApi
    url: str  # for messages
    start: int
    asked: int
    body: bytes
    tile_first: int = 0  # static-ct: the index of the tile's first entry ...
    tile_width: int = 0  # ... and the entries the tile holds
    tile_path: str = ""  # ... and its path, for messages


class IssuersMissing(Exception):
    """A tile's entries name issuer certificates that were not handed over (SHA-256 fingerprints)."""

    def __init__(self, fingerprints: frozenset[bytes]) -> None:
        super().__init__(f"{len(fingerprints)} issuer certificate(s) missing")
        self.fingerprints = fingerprints


class _Entry(msgspec.Struct):
    leaf_input: bytes  # base64 in the document; msgspec decodes it
    extra_data: bytes


class _GetEntries(msgspec.Struct):
    entries: list[_Entry]


_GET_ENTRIES = msgspec.json.Decoder(_GetEntries)
_EXTRA = ExtraDataBuilder()  # per process: issuer chains repeat across tiles


def json_document(body: bytes) -> object:
    """A JSON document; DecodeError ("truncated JSON (N bytes)", "invalid JSON at offset ...") if not."""
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise DecodeError("response is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        # Cut off mid-document: the parser ran out of input, or out of input inside a string.
        if exc.pos >= len(body.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise DecodeError(f"truncated JSON ({len(body)} bytes)") from None
        raise DecodeError(f"invalid JSON at offset {exc.pos}: {exc.msg}") from None
    except ValueError:
        # json refuses to convert an integer of more digits than sys.get_int_max_str_digits() (4,300):
        # no field of any log API is such a number.
        raise DecodeError("invalid JSON: an integer with thousands of digits") from None
    except RecursionError:
        raise DecodeError("invalid JSON: nested too deeply") from None


def get_entries_pairs(body: bytes) -> list[EntryPair]:
    """The entries of a get-entries answer, in order; DecodeError (one line) if it is not one."""
    try:
        return [(entry.leaf_input, entry.extra_data) for entry in _GET_ENTRIES.decode(body).entries]
    except msgspec.DecodeError:  # ValidationError included
        return parse_get_entries_response(json_document(body))


def entry_pairs(answer: EntryBody, issuers: Mapping[bytes, bytes]) -> list[EntryPair]:
    """The entries [start, start + n) an answer holds (1 <= n <= asked), in order. DecodeError if the
    answer is malformed or holds no entry or too many; IssuersMissing if a tile names issuer
    certificates that `issuers` (SHA-256 fingerprint -> DER) lacks."""
    if answer.api is EntryApi.RFC6962:
        pairs = get_entries_pairs(answer.body)
        if not pairs:
            raise DecodeError(
                f"no entries for [{answer.start}, {answer.start + answer.asked}) (asked for {answer.asked})"
            )
        if len(pairs) > answer.asked:
            raise DecodeError(f"{len(pairs)} entries returned for {answer.asked} asked")
        return pairs
    what = f"data tile {answer.tile_path}"
    leaves = scan_data_tile(answer.body, answer.tile_first, answer.tile_width, what)
    first = answer.start - answer.tile_first
    wanted = leaves[first : first + answer.asked]
    missing = frozenset(fp for leaf in wanted for fp in leaf[2] if fp not in issuers)
    if missing:
        raise IssuersMissing(missing)
    return [(leaf[0], _EXTRA.build(leaf, issuers)) for leaf in wanted]
