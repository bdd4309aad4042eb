"""Alerts delivered per second to a local webhook, beside raw aiohttp POSTs of the same bodies.

Run: .venv/bin/python bench/notify_bench.py [--alerts N] [--concurrency C] [--store]
The receiver is an aiohttp server in a separate process on 127.0.0.1 that checks each HMAC signature,
so the sender and the receiver do not share one CPU's event loop. Three figures, one run:
- baseline: one aiohttp session POSTing the N signed bodies, C at a time (the floor of any sender);
- sender/memory: ctsentinel.notify.Sender over the in-memory outbox (channel + retry bookkeeping);
- sender/sqlite (--store): the Sender over the durable outbox of an SQLite store (a write per delivery).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import multiprocessing
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from ctsentinel.notify import AlertEvent, MemoryOutbox, Sender
from ctsentinel.notify.webhook import WebhookChannel, body_of, signature
from ctsentinel.retry import Backoff
from ctsentinel.watch.severity import Severity

SECRET = "bench-secret"


def serve(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, request.headers.get("X-Ctsentinel-Signature", ""))
        return web.Response(status=204 if ok else 401)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def event(number: int, rng: random.Random) -> AlertEvent:
    names = [f"{rng.randrange(16**8):08x}.example.com" for _ in range(rng.randrange(1, 8))]
    return AlertEvent.from_payload(
        {
            "id": number,
            "watch": "example",
            "reason": "unauthorized_issuer",
            "severity": "critical",
            "issuer": "CN=Fina RDC 2020,O=Financijska agencija,C=HR",
            "issuer_spki_sha256": f"{rng.randrange(16**64):064x}",
            "serial": f"{rng.randrange(16**32):032x}",
            "dns_names": names,
            "ip_addresses": ["1.1.1.1"],
            "matched": names[:1],
            "not_before": "2024-02-18T00:00:00Z",
            "not_after": "2025-02-18T00:00:00Z",
            "sha256": [f"{rng.randrange(16**64):064x}"],
            "entries": [{"log": "https://ct.example/log/", "index": rng.randrange(10**9), "type": "precert"}],
            "first_seen": "2024-02-18T00:01:00Z",
            "revoked": None,
        }
    )


async def baseline(url: str, events: list[AlertEvent], concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    bodies = [body_of(e) for e in events]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def post(number: int, body: bytes) -> None:
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": f"alert-{number}",
                "X-Ctsentinel-Signature": signature(SECRET, body),
            }
            async with limit, session.post(url, data=body, headers=headers) as response:
                await response.read()
                assert response.status == 204, response.status

        started = time.perf_counter()
        await asyncio.gather(*(post(n, b) for n, b in enumerate(bodies)))
        return time.perf_counter() - started


async def through_sender(outbox: object, url: str, concurrency: int, count: int) -> float:
    hook = WebhookChannel("hook", url, secret=SECRET, concurrency=concurrency)
    sender = Sender(outbox, [hook], backoff=Backoff(base=0.05, cap=1.0), batch=1000)  # type: ignore[arg-type]
    started = time.perf_counter()
    left = await sender.drain(120)
    elapsed = time.perf_counter() - started
    await sender.close()
    assert left == [], f"{len(left)} deliveries left"
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", action="store_true", help="also through an SQLite store's outbox")
    args = parser.parse_args()
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    if not ready.wait(10):
        sys.exit("receiver did not start")
    url = f"http://127.0.0.1:{port}/hook"
    rng = random.Random(6)
    events = [event(n, rng) for n in range(args.alerts)]
    asyncio.run(baseline(url, events[:200], args.concurrency))  # warm up both processes
    runs: dict[str, list[float]] = {}
    try:
        for _ in range(args.repeat):  # interleaved, so that drift of a shared machine hits all alike
            runs.setdefault("baseline: raw aiohttp POSTs", []).append(
                asyncio.run(baseline(url, events, args.concurrency))
            )
            memory = MemoryOutbox()
            for n, e in enumerate(events):
                memory.enqueue("hook", f"alert-{n}:hook", e)
            runs.setdefault("Sender, in-memory outbox", []).append(
                asyncio.run(through_sender(memory, url, args.concurrency, args.alerts))
            )
            if args.store:
                runs.setdefault("Sender, SQLite store outbox", []).append(
                    store_run(url, events, args.concurrency)
                )
    finally:
        server.terminate()
    print(f"{args.alerts} alerts to a local webhook, {args.concurrency} in flight, receiver checks HMACs")
    print(f"median of {args.repeat} interleaved runs:")
    for label, times in runs.items():
        elapsed = statistics.median(times)
        print(f"  {label:<30} {elapsed:7.3f} s  {args.alerts / elapsed:9.0f} alerts/s")


class _Everything:
    key = "hook"

    def accepts(self, severity: Severity, watch: str | None) -> bool:
        return True


def store_run(url: str, events: list[AlertEvent], concurrency: int) -> float:
    from ctsentinel.store import Store

    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            outbox = store.outbox
            for number, e in enumerate(events):  # queued as the monitor's batches would, one per alert
                outbox.enqueue_event(e, f"bench {number}", [_Everything()])
            return asyncio.run(through_sender(outbox, url, concurrency, len(events)))
        finally:
            store.close()


if __name__ == "__main__":
    main()
