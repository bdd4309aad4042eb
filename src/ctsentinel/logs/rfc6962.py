"""The RFC 6962 log API (section 4): get-sth, get-sth-consistency, get-entries, proofs for start = "end"."""

from __future__ import annotations

import base64
from urllib.parse import quote

from ctsentinel.ct.entries import EntryApi, EntryBody
from ctsentinel.ct.errors import CTError
from ctsentinel.ct.merkle import CompactRange, leaf_hash
from ctsentinel.ct.sth import (
    SignedTreeHead,
    parse_consistency_response,
    parse_entry_and_proof_response,
    parse_proof_by_hash_response,
)
from ctsentinel.logs.client import LogClient, TreeHead
from ctsentinel.logs.http import TREE_HEAD_BYTES, LogHTTPError, LogResponseError, parse_json


class Rfc6962Client(LogClient):
    def _url(self, endpoint: str) -> str:
        return f"{self.info.url}ct/v1/{endpoint}"

    async def get_tree_head(self) -> TreeHead:
        url = self._url("get-sth")
        raw = await self.http.get(url, self.budget, max_bytes=TREE_HEAD_BYTES)
        try:
            sth = SignedTreeHead.from_json(parse_json(url, raw))
        except CTError as exc:
            raise LogResponseError(url, str(exc)) from None
        return TreeHead(sth.tree_size, sth.timestamp, sth.root_hash, raw)

    async def get_consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        if not 0 <= old_size <= new_size:
            raise ValueError(f"consistency proof from {old_size} to {new_size}")
        if old_size == 0 or old_size == new_size:
            return []  # nothing to prove; logs refuse first=0
        url = self._url(f"get-sth-consistency?first={old_size}&second={new_size}")
        try:
            return parse_consistency_response(await self.http.get_json(url, self.budget))
        except CTError as exc:
            raise LogResponseError(url, str(exc)) from None

    async def fetch_entries(self, start: int, end: int) -> EntryBody:
        if not 0 <= start < end:
            raise ValueError(f"get-entries range [{start}, {end}) is empty or negative")
        asked = min(end - start, self.budget.batch_size)
        url = self._url(f"get-entries?start={start}&end={start + asked - 1}")
        return EntryBody(EntryApi.RFC6962, url, start, asked, await self.http.get(url, self.budget))

    async def get_compact_range(self, size: int) -> CompactRange:
        """The compact range of [0, size) from the last leaf and its inclusion proof at that size; the
        caller checks root() against the head, which is what makes it trustworthy."""
        if size == 0:
            return CompactRange()
        index = size - 1
        url = self._url(f"get-entry-and-proof?leaf_index={index}&tree_size={size}")
        try:
            leaf, _, proof = parse_entry_and_proof_response(await self.http.get_json(url, self.budget))
        except LogHTTPError as exc:
            if exc.status is None or not 400 <= exc.status < 500:
                raise
            # Some logs do not implement get-entry-and-proof: the entry plus get-proof-by-hash does it.
            leaf, proof = await self._last_leaf_by_hash(size)
        except CTError as exc:
            raise LogResponseError(url, str(exc)) from None
        try:
            return CompactRange.from_last_leaf_proof(size, leaf_hash(leaf), proof)
        except CTError as exc:
            raise LogResponseError(url, str(exc)) from None

    async def _last_leaf_by_hash(self, size: int) -> tuple[bytes, list[bytes]]:
        index = size - 1
        (entry,) = (await self.get_entries(index, size))[:1]
        digest = quote(base64.b64encode(leaf_hash(entry.leaf_input)).decode("ascii"), safe="")
        url = self._url(f"get-proof-by-hash?hash={digest}&tree_size={size}")
        try:
            found, proof = parse_proof_by_hash_response(await self.http.get_json(url, self.budget))
        except CTError as exc:
            raise LogResponseError(url, str(exc)) from None
        if found != index:
            # The same leaf logged twice: the log proves its first copy, which is no use here.
            raise LogResponseError(url, f"proof is for leaf {found}, not the last leaf {index}")
        return entry.leaf_input, proof
