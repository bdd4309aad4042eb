"""RFC 6962 section 4 endpoints under <base>/ct/v1/, answering as real logs (Trillian's CTFE) do.

Errors are plain-text bodies with 400 (bad request, out-of-range sizes) or 404 (no such leaf hash).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from aiohttp import web

from ctsentinel.ct.tls import SignedCertificateTimestamp
from ctsentinel.testlog import hostile
from ctsentinel.testlog.faults import HUGE_TREE_SIZE
from ctsentinel.testlog.service import SERVICE, TestLogService
from ctsentinel.testlog.storage import Submission, SubmissionError

_DECIMAL = re.compile("0|[1-9][0-9]{0,18}")


def json_response(obj: object) -> web.Response:
    return web.Response(body=json.dumps(obj, separators=(",", ":")).encode(), content_type="application/json")


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message + "\n")


def _service(request: web.Request) -> TestLogService:
    return request.app[SERVICE]


def _int_param(request: web.Request, name: str) -> int:
    text = request.query.get(name)
    if text is None:
        raise bad_request(f"missing parameter {name}")
    if not _DECIMAL.fullmatch(text):
        raise bad_request(f"parameter {name}={text[:40]!r} is not a non-negative decimal integer")
    return int(text)


def _b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(v).decode("ascii") for v in values]


def sct_json(sct: SignedCertificateTimestamp) -> dict[str, object]:
    return {
        "sct_version": sct.version,
        "id": base64.b64encode(sct.log_id).decode("ascii"),
        "timestamp": sct.timestamp,
        "extensions": base64.b64encode(sct.extensions).decode("ascii"),
        "signature": base64.b64encode(sct.signature.encode()).decode("ascii"),
    }


async def _add(request: web.Request, precert: bool) -> web.Response:
    service = _service(request)
    try:
        body = await request.json(loads=json.loads)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        raise bad_request("body is not JSON") from None
    chain_b64 = body.get("chain") if isinstance(body, dict) else None
    if not isinstance(chain_b64, list) or not all(isinstance(c, str) for c in chain_b64):
        raise bad_request('body must be {"chain": [base64 DER, ...]}')
    try:
        chain = [base64.b64decode(c, validate=True) for c in chain_b64]
    except binascii.Error:
        raise bad_request("chain holds invalid base64") from None
    try:
        (sct,) = service.storage.add([Submission(chain=chain, precert=precert)])
    except SubmissionError as exc:
        raise bad_request(str(exc)) from None
    assert sct is not None
    if service.config.merge_delay <= 0:
        service.storage.integrate()
    return json_response(sct_json(sct))


async def add_chain(request: web.Request) -> web.Response:
    return await _add(request, precert=False)


async def add_pre_chain(request: web.Request) -> web.Response:
    return await _add(request, precert=True)


async def get_sth(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    faults = service.faults
    if "bloated-sth" in faults:
        faults.bad_heads += 1
        padding = int(faults.value("bloated-sth") or 0)
        bad = hostile.bloated_sth(service.storage, service.view().sth, faults.bad_heads, padding)
        return web.Response(body=bad, content_type="application/json")
    if "trickle-sth" in faults:
        whole = json.dumps(service.view().sth.to_json(), separators=(",", ":")).encode()
        seconds = float(faults.value("trickle-sth") or 0)
        return await hostile.trickle(request, whole, "application/json", seconds)
    head = service.view().sth.to_json()
    if "huge-tree-size" in service.faults:
        size = f'"tree_size":{head["tree_size"]}'
        body = json.dumps(head, separators=(",", ":")).replace(size, f'"tree_size":{HUGE_TREE_SIZE}')
        return web.Response(body=body.encode(), content_type="application/json")
    return json_response(head)


async def get_sth_consistency(request: web.Request) -> web.Response:
    first, second = _int_param(request, "first"), _int_param(request, "second")
    view = _service(request).view()
    if first == 0:
        # As Trillian-based logs answer: there is no consistency proof from the empty tree.
        raise bad_request("first must be at least 1")
    if first > second:
        raise bad_request(f"first {first} is greater than second {second}")
    if second > view.size:
        raise bad_request(f"second {second} is beyond the tree size {view.size}")
    proof = [] if first == second else view.tree.consistency_proof(first, second)
    return json_response({"consistency": _b64(proof)})


async def get_proof_by_hash(request: web.Request) -> web.Response:
    tree_size = _int_param(request, "tree_size")
    # A client that forgot to percent-encode "+" sends a space: accept it, as real logs do.
    text = request.query.get("hash", "").replace(" ", "+")
    try:
        leaf_hash = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise bad_request("hash is not base64") from None
    if len(leaf_hash) != 32:
        raise bad_request(f"hash is {len(leaf_hash)} bytes, not 32")
    view = _service(request).view()
    if not 1 <= tree_size <= view.size:
        raise bad_request(f"tree_size {tree_size} outside [1, {view.size}]")
    index = view.find_leaf(leaf_hash, tree_size)
    if index is None:
        raise web.HTTPNotFound(text=f"no leaf with hash {text} in the tree of size {tree_size}\n")
    return json_response(
        {"leaf_index": index, "audit_path": _b64(view.tree.inclusion_proof(index, tree_size))}
    )


async def get_entries(request: web.Request) -> web.Response:
    start, end = _int_param(request, "start"), _int_param(request, "end")
    service = _service(request)
    view = service.view()
    if start > end:
        raise bad_request(f"start {start} is greater than end {end}")
    if start >= view.size:
        raise bad_request(f"start {start} is beyond the tree size {view.size}")
    end = min(end, view.size - 1, start + service.config.batch_size - 1)
    count = end - start + 1
    if "short-entries" in service.faults:
        most = service.faults.value("short-entries")
        count = max(1, count // 2) if most is None else max(1, min(count, int(most)))
    entries = view.entries(start, start + count)
    # The JSON json.dumps would write, joined by hand: base64 text needs no escaping, and a thousand entries
    # of ~4 KB through the encoder cost the server more than everything else in the request (a benchmark
    # of a monitor must measure the monitor, not this).
    b64, extra_data = base64.b64encode, view.extra_data
    # A certificate's extra_data is its chain, which thousands of entries share: encoded once per answer.
    chains: dict[tuple[bytes, ...], bytes] = {}
    items = []
    for e in entries:
        if e.pre_certificate is None:
            extra = chains.get(e.chain_fingerprints)
            if extra is None:
                extra = chains[e.chain_fingerprints] = b64(extra_data(e))
        else:
            extra = b64(extra_data(e))
        items.append(b'{"leaf_input":"' + b64(e.leaf_input) + b'","extra_data":"' + extra + b'"}')
    return web.Response(body=b'{"entries":[' + b",".join(items) + b"]}", content_type="application/json")


async def get_entry_and_proof(request: web.Request) -> web.Response:
    index, tree_size = _int_param(request, "leaf_index"), _int_param(request, "tree_size")
    service = _service(request)
    view = service.view()
    if tree_size > view.size:
        raise bad_request(f"tree_size {tree_size} is beyond the tree size {view.size}")
    if index >= tree_size:
        raise bad_request(f"leaf_index {index} is not below tree_size {tree_size}")
    (entry,) = view.entries(index, index + 1)
    return json_response(
        {
            "leaf_input": base64.b64encode(entry.leaf_input).decode("ascii"),
            "extra_data": base64.b64encode(view.extra_data(entry)).decode("ascii"),
            "audit_path": _b64(view.tree.inclusion_proof(index, tree_size)),
        }
    )


async def get_roots(request: web.Request) -> web.Response:
    return json_response({"certificates": _b64(_service(request).storage.roots())})


ROUTES = [
    ("POST", "ct/v1/add-chain", add_chain),
    ("POST", "ct/v1/add-pre-chain", add_pre_chain),
    ("GET", "ct/v1/get-sth", get_sth),
    ("GET", "ct/v1/get-sth-consistency", get_sth_consistency),
    ("GET", "ct/v1/get-proof-by-hash", get_proof_by_hash),
    ("GET", "ct/v1/get-entries", get_entries),
    ("GET", "ct/v1/get-entry-and-proof", get_entry_and_proof),
    ("GET", "ct/v1/get-roots", get_roots),
]
