"""Hostile answers: what a log, or a host a tampered log list points at, can do to a monitor.

Each is a fault (faults.py) a test turns on to attack ctsentinel over real HTTP: a head that trickles in one
byte at a time, bloated badly signed heads that change at every request, redirects off the log's host (to
an "internal service" that answers with a secret, or to a file: URL), a published log list that selects
nothing or nests too deeply, and issuer "certificates" far larger than any CA's.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from aiohttp import web

from ctsentinel.ct.checkpoint import Checkpoint
from ctsentinel.ct.note import NoteSignature, format_note, rfc6962_key_id
from ctsentinel.ct.sth import SignedTreeHead
from ctsentinel.testlog.faults import Faults
from ctsentinel.testlog.storage import LogStorage, now_ms
from ctsentinel.testlog.view import corrupt_signature

# The "internal service" a redirect leads to, on the same server under another host name. Its secret must
# never reach anything the monitor stores or prints.
INTERNAL_PATH = "/internal/secret"
INTERNAL_SECRET = "internal-service-secret-7f3a9c"
NOTE_LIMIT = 1 << 20  # a signed note (checkpoint) may have at most this many bytes
DEFAULT_NESTING = 100_000


def _bad_head(storage: LogStorage, head: SignedTreeHead, sequence: int) -> SignedTreeHead:
    """A head past the real one (a new size at every request), with a random root and a bad signature."""
    size = head.tree_size + sequence
    signed = storage.sign_tree_head(size, max(now_ms(), head.timestamp + 1), os.urandom(32))
    return corrupt_signature(signed)


def bloated_sth(storage: LogStorage, head: SignedTreeHead, sequence: int, padding: int) -> bytes:
    """A get-sth body: a badly signed head and a `padding` member of `padding` bytes."""
    document: dict[str, Any] = _bad_head(storage, head, sequence).to_json()
    document["padding"] = "x" * padding
    return json.dumps(document, separators=(",", ":")).encode()


def bloated_checkpoint(storage: LogStorage, head: SignedTreeHead, sequence: int, padding: int) -> bytes:
    """A checkpoint: a badly signed head with an extension line of up to `padding` bytes."""
    bad = _bad_head(storage, head, sequence)
    origin = storage.origin
    signature = NoteSignature(
        name=origin,
        key_id=rfc6962_key_id(origin, storage.signer.public_key),
        signature=bad.timestamp.to_bytes(8, "big") + bad.signature.encode(),
    )
    empty = Checkpoint(origin=origin, tree_size=bad.tree_size, root_hash=bad.root_hash).to_text()
    room = NOTE_LIMIT - len(format_note(empty, [signature])) - 1
    extensions = ("x" * min(padding, room),) if min(padding, room) > 0 else ()
    text = Checkpoint(origin, bad.tree_size, bad.root_hash, extensions).to_text()
    return format_note(text, [signature])


async def trickle(request: web.Request, body: bytes, content_type: str, seconds: float) -> web.StreamResponse:
    """`body`, one byte every `seconds`: a socket read timeout never fires, only a total deadline does."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.content_length = len(body)
    await response.prepare(request)
    try:
        for position in range(len(body)):
            await response.write(body[position : position + 1])
            await asyncio.sleep(seconds)
    except (ConnectionError, RuntimeError):  # the client gave up: nothing to finish
        pass
    return response


def redirect(request: web.Request, faults: Faults) -> web.Response | None:
    """The 302 a redirect fault answers a log API request with, or None."""
    if "redirect-file" in faults:
        return web.Response(status=302, headers={"Location": "file:///etc/passwd"})
    if "redirect-host" in faults:
        # Another host name for the same server: a different host to a client that compares them.
        port = request.url.port
        return web.Response(status=302, headers={"Location": f"http://localhost:{port}{INTERNAL_PATH}"})
    return None


async def internal_service(request: web.Request) -> web.Response:
    return web.Response(status=403, text=f"forbidden: {INTERNAL_SECRET}\n")


def published_log_list(document: bytes, faults: Faults) -> bytes:
    """The log's list as <base>/log_list.json serves it, as the list faults change it."""
    if "loglist-nested" in faults:
        value = faults.value("loglist-nested")
        depth = DEFAULT_NESTING if value is None else int(value)
        return b"[" * depth + b"]" * depth
    if "loglist-empty" in faults:
        parsed = json.loads(document)
        for operator in parsed["operators"]:
            for section in ("logs", "tiled_logs"):
                for entry in operator.get(section, []):
                    entry["state"] = {"rejected": {"timestamp": entry["state"]["usable"]["timestamp"]}}
        return json.dumps(parsed, indent=2).encode()
    return document

