"""Fuzz: hostile log answers and certificates against ctsentinel, counting crashes and hangs.

A seeded loop (reproducible with --seed), in two phases:

1. In process: real certificates, log entries, tree heads, checkpoints, tiles, proofs and log lists (from
   tests/data), and certificates built to be hostile (names of hundreds of KB, forged chains), mutated
   (bit flips, bytes set, inserted, repeated, deleted, truncated, DER lengths inflated, JSON values
   replaced by huge numbers, long strings, wrong types or deep nesting), through what the monitor runs
   on them: record_from_der, record_from_entry (the issuer verified), a Watchlist and the CA-watch
   flags, tree head parsing and signature checks, checkpoint notes, get-entries answers, data and hash
   tiles, consistency proofs and log lists.
2. Over HTTP: a local server stands in front of a real test log and answers the real clients (HttpClient
   with the RFC 6962 and static-ct clients) with mutated answers, statuses, redirects and headers.

A crash is any exception but the one-line errors the code documents (CTError, LogHTTPError, LogListError,
IssuersMissing for a tile); a hang is a call that takes longer than --hang seconds. Each is printed with
the seed and run that reproduce it.

    python bench/hostile_fuzz.py [--runs 200000] [--http-runs 3000] [--seed 1] [--hang 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from aiohttp import web  # noqa: E402

from ctsentinel.certs.decode import record_from_der, record_from_entry  # noqa: E402
from ctsentinel.certs.issuer import verified_issuer  # noqa: E402
from ctsentinel.config import CaWatchConfig, WatchConfig  # noqa: E402
from ctsentinel.ct.checkpoint import open_checkpoint, parse_checkpoint_text  # noqa: E402
from ctsentinel.ct.entries import EntryApi, EntryBody, IssuersMissing, entry_pairs  # noqa: E402
from ctsentinel.ct.errors import CTError  # noqa: E402
from ctsentinel.ct.merkle import verify_consistency  # noqa: E402
from ctsentinel.ct.note import parse_note  # noqa: E402
from ctsentinel.ct.signatures import LogKey  # noqa: E402
from ctsentinel.ct.sth import SignedTreeHead, parse_consistency_response  # noqa: E402
from ctsentinel.ct.tiles import decode_hash_tile  # noqa: E402
from ctsentinel.logs import (  # noqa: E402
    HttpClient,
    LogBudget,
    LogHTTPError,
    LogInfo,
    LogListError,
    parse_log_list,
)
from ctsentinel.logs.client import TreeHead  # noqa: E402
from ctsentinel.logs.http import MAX_RESPONSE_BYTES, parse_json  # noqa: E402
from ctsentinel.logs.rfc6962 import Rfc6962Client  # noqa: E402
from ctsentinel.logs.staticct import StaticCtClient  # noqa: E402
from ctsentinel.testlog.malform import add_dns_name, long_dns_name  # noqa: E402
from ctsentinel.testlog.server import BackgroundLog  # noqa: E402
from ctsentinel.watch import Watchlist  # noqa: E402
from ctsentinel.watch.ca_policy import CaPolicy  # noqa: E402

DATA = ROOT / "tests" / "data"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
EXPECTED = (CTError, LogHTTPError, LogListError, IssuersMissing)


# --- the inputs ---------------------------------------------------------------------------------------


def _ders(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.suffix == ".der":
        return [data]
    return [base64.b64decode(b"".join(m.group(1).split())) for m in _PEM.finditer(data)]


@dataclass
class Seeds:
    certificates: list[bytes] = field(default_factory=list)
    entries: list[tuple[bytes, bytes]] = field(default_factory=list)
    get_entries: list[bytes] = field(default_factory=list)
    sths: list[tuple[bytes, LogInfo]] = field(default_factory=list)
    checkpoints: list[tuple[bytes, LogInfo]] = field(default_factory=list)
    tiles: list[bytes] = field(default_factory=list)
    hash_tiles: list[bytes] = field(default_factory=list)
    proofs: list[bytes] = field(default_factory=list)
    lists: list[bytes] = field(default_factory=list)


def _info(key: LogKey, kind: str, url: str = "https://fuzz.example/") -> LogInfo:
    return LogInfo(url, kind, key.log_id, key, "fuzz", "fuzz", "usable", 86400)


def load_seeds() -> Seeds:
    seeds = Seeds()
    for path in sorted((DATA / "certs" / "corpus").rglob("*")):
        if path.is_file() and path.suffix in (".pem", ".der", ".crttest"):
            seeds.certificates += _ders(path)
    for name in (
        "get-entries_0_3.json",
        "ctgo-client-test_x509-entry.json",
        "ctgo-client-test_precert-entry.json",
    ):
        raw = (DATA / "certs" / "entries" / name).read_bytes()
        document = json.loads(raw)
        items = document.get("entries", [document])
        seeds.entries += [
            (base64.b64decode(e["leaf_input"]), base64.b64decode(e["extra_data"])) for e in items
        ]
        seeds.get_entries.append(json.dumps({"entries": items}).encode())
    pilot = LogKey.from_pem((DATA / "rfc6962" / "keys" / "google-pilot.pem").read_bytes())
    for path in sorted((DATA / "rfc6962" / "google-pilot-2013").glob("get-sth_*.json")):
        seeds.sths.append((path.read_bytes(), _info(pilot, "rfc6962")))
    consistency = DATA / "rfc6962" / "google-pilot-2013" / "get-sth-consistency_1979426_2741521.json"
    seeds.proofs.append(consistency.read_bytes())
    sycamore = DATA / "static-ct" / "letsencrypt-sycamore2026h1"
    key = LogKey.from_pem((sycamore / "letsencrypt-sycamore2026h1.pem").read_bytes())
    seeds.checkpoints.append(((sycamore / "checkpoint").read_bytes(), _info(key, "static-ct")))
    navigli = DATA / "static-ct" / "sunlight-navigli2025h2" / "tile"
    seeds.tiles += [p.read_bytes() for p in sorted((navigli / "data").iterdir()) if p.is_file()]
    seeds.hash_tiles += [p.read_bytes() for p in sorted((navigli / "0").rglob("*")) if p.is_file()]
    seeds.lists.append((DATA / "loglists" / "ctgo-testdata-loglist3.json").read_bytes())
    # Built to be hostile: a name of hundreds of KB, a label of thousands of octets.
    sample = seeds.certificates[:40]
    for der in sample[:5]:
        for name in (long_dns_name(300_000), "x" * 5000 + ".one.one.one.one"):
            with contextlib.suppress(CTError, ValueError):
                seeds.certificates.append(add_dns_name(der, name))
    return seeds


# --- mutations ----------------------------------------------------------------------------------------


def mutate_bytes(rng: random.Random, data: bytes, others: Sequence[bytes]) -> bytes:
    buf = bytearray(data or b"\x00")
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        n = len(buf) or 1
        op = rng.randrange(9)
        at = rng.randrange(n)
        if op == 0:
            buf[at % len(buf)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at % len(buf)] = rng.randrange(256)
        elif op == 2:
            buf[at:at] = rng.randbytes(rng.randrange(1, 16))
        elif op == 3:
            del buf[at : at + rng.randrange(1, 64)]
        elif op == 4:
            del buf[at:]
        elif op == 5:  # a DER length inflated: the element claims far more than there is
            buf[at : at + 1] = bytes([rng.choice((0x84, 0x83, 0x80, 0xFF))]) + b"\xff\xff\xff\xff"
        elif op == 6 and others:  # splice with another input
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            buf[at:] = other[cut:]
        elif op == 7:  # repeat a slice: bloat
            piece = bytes(buf[at : at + rng.randrange(1, 32)])
            buf[at:at] = piece * rng.choice((2, 100, 10_000))
        else:
            buf[at:at] = bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randrange(1, 8)))
        if not buf:
            buf = bytearray(b"\x00")
    return bytes(buf)


_HOSTILE_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**64,
    2**63 - 1,
    -(2**63),
    1.5,
    float("1e308"),
    "",
    "x" * 100_000,
    "\u0000\u202e\x1b[2J",
    [],
    {},
    [[]],
    "AAAA",
    "!!notbase64",
    10**4000,
]


def mutate_json(rng: random.Random, data: bytes) -> bytes:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return mutate_bytes(rng, data, ())
    choice = rng.randrange(4)
    if choice == 0:  # deep nesting, past what the parser may recurse
        depth = rng.choice((1000, 100_000))
        return b"[" * depth + b"]" * depth
    if choice == 1:
        return mutate_bytes(rng, data, ())

    repeated: list[bool] = []

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if out and rng.random() < 0.3:
                key = rng.choice(list(out))
                out[key] = rng.choice(_HOSTILE_VALUES)
            if rng.random() < 0.05:
                out["padding"] = "y" * rng.choice((10, 100_000))
            return out
        if isinstance(node, list):
            items = [walk(v) for v in node]
            if items and rng.random() < 0.2:
                items[rng.randrange(len(items))] = rng.choice(_HOSTILE_VALUES)
            if items and not repeated and rng.random() < 0.1:
                # One list repeated per document: repeats nested in repeats grow past any response limit,
                # and building them would be the fuzzer's time, not the code's.
                repeated.append(True)
                items = items * rng.choice((2, 50))
            return items
        if rng.random() < 0.1:
            return rng.choice(_HOSTILE_VALUES)
        return node

    text = json.dumps(walk(document)).encode()
    if len(text) > MAX_RESPONSE_BYTES:  # never reaches a parser: the HTTP client refuses it first
        return mutate_bytes(rng, data, ())
    return text


# --- phase 1: in process ------------------------------------------------------------------------------


@dataclass
class Tally:
    runs: int = 0
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")

    def record(self, what: str, started: float, hang: float, problem: BaseException | None) -> None:
        self.runs += 1
        seconds = time.perf_counter() - started
        if seconds > self.slowest[0]:
            self.slowest = (seconds, what)
        if problem is not None:
            lines = traceback.format_exception(type(problem), problem, problem.__traceback__)
            self.crashes.append(f"{what}: {type(problem).__name__}: {problem}\n{''.join(lines[-4:])}")
        elif seconds > hang:
            self.hangs.append(f"{what}: {seconds:.1f} s")


WATCHLIST = Watchlist.from_config(
    [WatchConfig(name="w", domains=("one.one.one.one", "example.com", "*.example.org"))]
)
CA_POLICY = CaPolicy.from_config([CaWatchConfig(name="every CA", every_ca=True)])


def _certificate(rng: random.Random, seeds: Seeds) -> None:
    der = mutate_bytes(rng, rng.choice(seeds.certificates), seeds.certificates)
    record = record_from_der(der)
    WATCHLIST.match(record)
    CA_POLICY.check(record)
    json.dumps(record.to_json())
    verified_issuer(der, rng.sample(seeds.certificates, 3))


def _entry(rng: random.Random, seeds: Seeds) -> None:
    leaf, extra = rng.choice(seeds.entries)
    if rng.random() < 0.5:
        leaf = mutate_bytes(rng, leaf, [e[0] for e in seeds.entries])
    if rng.random() < 0.7:
        chain_from = rng.choice(seeds.certificates)
        extra = mutate_bytes(rng, extra, [chain_from])
    for verify in (True, False):
        record = record_from_entry(leaf, extra, verify_issuer=verify)
        WATCHLIST.match(record)
        json.dumps(record.to_json())


def _sth(rng: random.Random, seeds: Seeds) -> None:
    body, info = rng.choice(seeds.sths)
    body = mutate_json(rng, body)
    try:
        sth = SignedTreeHead.from_json(parse_json("u", body))
    except (CTError, LogHTTPError):
        return
    TreeHead(sth.tree_size, sth.timestamp, sth.root_hash, body).verify(info)


def _checkpoint(rng: random.Random, seeds: Seeds) -> None:
    body, info = rng.choice(seeds.checkpoints)
    body = mutate_bytes(rng, body, [c for c, _ in seeds.checkpoints])
    note = parse_note(body)
    checkpoint = parse_checkpoint_text(note.text)
    open_checkpoint(body, checkpoint.origin, info.key)


def _get_entries(rng: random.Random, seeds: Seeds) -> None:
    body = mutate_json(rng, rng.choice(seeds.get_entries))
    answer = EntryBody(EntryApi.RFC6962, "u", 0, 5, body)
    for leaf, extra in entry_pairs(answer, {})[:8]:
        WATCHLIST.match(record_from_entry(leaf, extra))


def _tile(rng: random.Random, seeds: Seeds) -> None:
    body = mutate_bytes(rng, rng.choice(seeds.tiles), seeds.tiles)
    answer = EntryBody(EntryApi.STATIC_CT, "u", 0, 256, body, 0, 256, "tile/data/000")
    try:
        entry_pairs(answer, {})
    except IssuersMissing as missing:
        fake = {fp: rng.choice(seeds.certificates) for fp in list(missing.fingerprints)[:64]}
        if len(fake) == len(missing.fingerprints):
            entry_pairs(answer, fake)


def _hash_tile(rng: random.Random, seeds: Seeds) -> None:
    decode_hash_tile(mutate_bytes(rng, rng.choice(seeds.hash_tiles), seeds.hash_tiles))


def _proof(rng: random.Random, seeds: Seeds) -> None:
    proof = parse_consistency_response(parse_json("u", mutate_json(rng, rng.choice(seeds.proofs))))
    verify_consistency(1979426, 2741521, proof, b"\x00" * 32, b"\x01" * 32)


def _log_list(rng: random.Random, seeds: Seeds) -> None:
    body = mutate_json(rng, rng.choice(seeds.lists))
    parse_log_list(body, "fuzz", warn=lambda _line: None, internal_hosts=rng.random() < 0.5)


TARGETS: list[tuple[str, Callable[[random.Random, Seeds], None], int]] = [
    ("certificate", _certificate, 30),
    ("entry", _entry, 20),
    ("get-sth", _sth, 10),
    ("checkpoint", _checkpoint, 8),
    ("get-entries", _get_entries, 10),
    ("data tile", _tile, 8),
    ("hash tile", _hash_tile, 4),
    ("consistency proof", _proof, 4),
    ("log list", _log_list, 6),
]


def in_process(runs: int, seed: int, hang: float, seeds: Seeds) -> tuple[Tally, dict[str, int]]:
    tally = Tally()
    counts: dict[str, int] = {}
    names = [t for t in TARGETS for _ in range(t[2])]
    for run in range(runs):
        rng = random.Random(f"{seed}:{run}")
        name, target, _ = rng.choice(names)
        counts[name] = counts.get(name, 0) + 1
        started = time.perf_counter()
        problem: BaseException | None = None
        try:
            target(rng, seeds)
        except EXPECTED:
            pass
        except Exception as exc:  # the finding: anything else is a crash
            problem = exc
        tally.record(f"seed {seed} run {run} ({name})", started, hang, problem)
    return tally, counts


# --- phase 2: over HTTP -------------------------------------------------------------------------------


class HostileFront:
    """A server in front of the real test log: each answer passes, or is mutated, replaced or redirected."""

    def __init__(self, upstream: str, rng: random.Random) -> None:
        self.upstream = upstream
        self.rng = rng
        self.url = ""
        self._client: HttpClient | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rng = self.rng
        assert self._client is not None
        path = request.path_qs.removeprefix("/front/")
        try:
            body = await self._client.get(self.upstream + path)
            status = 200
        except LogHTTPError as exc:
            body, status = b"", exc.status or 502
        roll = rng.random()
        if roll < 0.25:
            return web.Response(body=body, status=status)
        if roll < 0.55:
            mutated = mutate_json(rng, body) if body[:1] in (b"{", b"[") else mutate_bytes(rng, body, ())
            return web.Response(body=mutated, status=200)
        if roll < 0.65:
            code = rng.choice((301, 302, 307, 308))
            target = rng.choice(
                (
                    "file:///etc/passwd",
                    "http://169.254.169.254/latest/",
                    request.path_qs,
                    "//other.example/x",
                    "http://localhost:1/",
                    "x" * 3000,
                )
            )
            return web.Response(status=code, headers={"Location": target})
        if roll < 0.75:
            code = rng.choice((204, 400, 404, 418, 429, 500, 502, 503))
            headers = {
                "Retry-After": rng.choice(
                    ("0", "1", "-1", "99999999", "Wed, 21 Oct 2015 07:28:00 GMT", "x" * 200)
                )
            }
            return web.Response(status=code, headers=headers, body=b"<secret>internal</secret>" * 10)
        if roll < 0.85:  # a length that lies
            response = web.StreamResponse(status=200)
            response.content_length = len(body) + rng.randrange(1, 1000)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            return response
        if roll < 0.92:  # a short trickle (the request deadline of the client is what ends it)
            response = web.StreamResponse(status=200)
            await response.prepare(request)
            for piece in range(0, min(len(body), 6)):
                await response.write(body[piece : piece + 1])
                await asyncio.sleep(0.05)
            return response
        return web.Response(body=rng.randbytes(rng.choice((0, 1, 100, 70_000))), status=200)

    async def __aenter__(self) -> HostileFront:
        self._client = HttpClient(max_tries=1)
        app = web.Application()
        app.router.add_route("GET", "/front/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/front/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
        assert self._client is not None
        await self._client.close()


async def _http_phase(runs: int, seed: int, hang: float, log: BackgroundLog, size: int) -> Tally:
    tally = Tally()
    path = log.directory / "log_list.json"
    infos = {i.kind: i for i in parse_log_list(path.read_bytes(), str(path), internal_hosts=True)}
    rng = random.Random(f"{seed}:http")
    # A Retry-After is obeyed (capped at 300 s in the monitor): capped at 1 s here, or one answer asking for
    # days would leave every later run waiting out the same pause and time out.
    http_client = HttpClient(max_tries=2, request_timeout=3, retry_after_cap=1.0)
    async with HostileFront(log.url, rng) as front, http_client as http:
        clients = {
            kind: (Rfc6962Client if kind == "rfc6962" else StaticCtClient)(
                LogInfo(front.url, kind, info.log_id, info.key, "", "", "usable", 86400),
                http,
                LogBudget(backoff_base=0.01, backoff_cap=0.05),
            )
            for kind, info in infos.items()
        }
        operations: list[tuple[str, Callable[[Any], Awaitable[Any]]]] = [
            ("get_tree_head", lambda c: _head(c)),
            ("get_entries", lambda c: c.fetch_range(0, size)),
            ("get_consistency_proof", lambda c: c.get_consistency_proof(1, size)),
            ("get_compact_range", lambda c: c.get_compact_range(size)),
        ]
        for run in range(runs):
            kind = rng.choice(sorted(clients))
            name, operation = rng.choice(operations)
            started = time.perf_counter()
            problem: BaseException | None = None
            try:
                async with asyncio.timeout(max(hang, 10.0)):
                    await operation(clients[kind])
            except EXPECTED:
                pass
            except TimeoutError:
                tally.hangs.append(f"seed {seed} http run {run} ({kind} {name}): no end in 10 s")
            except Exception as exc:
                problem = exc
            tally.record(f"seed {seed} http run {run} ({kind} {name})", started, 10.0, problem)
    return tally


async def _head(client: Any) -> None:
    head: TreeHead = await client.get_tree_head()
    head.verify(client.info)


def http_phase(runs: int, seed: int, hang: float) -> Tally:
    from testlog_client import submit
    from testlog_pki import make_leaf, make_pki

    with tempfile.TemporaryDirectory() as directory, BackgroundLog(Path(directory) / "log") as log:
        pki = make_pki("Fuzz")
        size = 40
        for n in range(size):
            submit(
                log.url,
                pki.chain(make_leaf(pki.intermediate, [f"f{n}.example"], precert=n % 2 == 0)),
                precert=n % 2 == 0,
            )
        deadline = time.monotonic() + 30
        while log_size(log.url) < size:
            if time.monotonic() > deadline:
                raise RuntimeError("the test log did not integrate")
            time.sleep(0.05)
        return asyncio.run(_http_phase(runs, seed, hang, log, size))


def log_size(url: str) -> int:
    from testlog_client import get_json

    return int(get_json(url + "ct/v1/get-sth")["tree_size"])


# --- the report ---------------------------------------------------------------------------------------


def report(title: str, tally: Tally, seconds: float) -> None:
    print(
        f"{title}: {tally.runs:,} runs in {seconds:.0f} s, {len(tally.crashes)} crashes, "
        f"{len(tally.hangs)} hangs; slowest {tally.slowest[0] * 1000:.0f} ms ({tally.slowest[1]})"
    )
    for line in (tally.crashes + tally.hangs)[:20]:
        print("  " + line.replace("\n", "\n  "))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--http-runs", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hang", type=float, default=2.0, help="seconds a call may take before it hangs")
    args = parser.parse_args(argv)
    seeds = load_seeds()
    started = time.perf_counter()
    tally, counts = in_process(args.runs, args.seed, args.hang, seeds)
    report("in process", tally, time.perf_counter() - started)
    print("  " + ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items())))
    started = time.perf_counter()
    http = http_phase(args.http_runs, args.seed, args.hang)
    report("over HTTP", http, time.perf_counter() - started)
    return 1 if tally.crashes or tally.hangs or http.crashes or http.hangs else 0


if __name__ == "__main__":
    sys.exit(main())
