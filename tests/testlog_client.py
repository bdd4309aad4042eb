"""A plain urllib client for the test log's tests: independent of ctsentinel's own log clients."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, data: object | None = None, headers: dict[str, str] | None = None) -> Reply:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers=dict(headers or {}))
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Reply(resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()})
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()})


def get_json(url: str) -> Any:
    reply = request(url)
    assert reply.status == 200, (url, reply.status, reply.body[:300])
    return reply.json()


def b64(chain: list[bytes]) -> list[str]:
    return [base64.b64encode(c).decode("ascii") for c in chain]


def submit(base: str, chain: list[bytes], precert: bool = False) -> dict[str, Any]:
    reply = request(base + ("ct/v1/add-pre-chain" if precert else "ct/v1/add-chain"), {"chain": b64(chain)})
    assert reply.status == 200, reply.body
    result: dict[str, Any] = reply.json()
    return result


def set_faults(base: str, set_: dict[str, object] | None = None, clear: list[str] | None = None) -> Any:
    reply = request(base + "admin/faults", {"set": set_ or {}, "clear": clear or []})
    assert reply.status == 200, reply.body
    return reply.json()
