"""Log lists: the real Chrome (2026, 2024) and Apple snapshots, the ct-go fixture, broken lists, selection,
loading from a path and from a URL on 127.0.0.1, and refresh keeping the last good list."""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ctsentinel.logs import (
    HttpClient,
    LogInfo,
    LogListError,
    LogListSource,
    bundled_log_list,
    load_log_list,
    parse_log_list,
    select_logs,
)

DATA = Path(__file__).parent / "data" / "loglists"
CHROME_2026 = DATA / "google-all_logs_list-v3_2026-08-21.json"
CHROME_2024 = DATA / "google-all_logs_list-v3_2024-10-09.json"
APPLE = DATA / "apple-current_log_list_2026-08-21.json"
CTGO = DATA / "ctgo-testdata-loglist3.json"
SECTIONS = {"logs": "rfc6962", "tiled_logs": "static-ct"}


def raw_counts(path: Path) -> collections.Counter[tuple[str, str]]:
    """(kind, state) counts straight from the JSON, independently of the parser."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for operator in json.loads(path.read_bytes())["operators"]:
        for section, kind in SECTIONS.items():
            for entry in operator.get(section, []):
                state = next(iter(entry.get("state") or {"unknown": None}))
                counts[(kind, state)] += 1
    return counts


def parsed_counts(logs: list[LogInfo]) -> collections.Counter[tuple[str, str]]:
    return collections.Counter((info.kind, info.state) for info in logs)


RACKETEER_WARNING = (
    "log list ctgo-testdata-loglist3.json: skipping operator 'Google' logs[2] (Google 'Racketeer' log): "
    "key: LogKey: not a SubjectPublicKeyInfo DER (a SEQUENCE starting with a SEQUENCE)"
)


@pytest.mark.parametrize("path", [CHROME_2026, CHROME_2024, APPLE], ids=lambda p: p.stem)
def test_real_lists_parse_completely(path: Path) -> None:
    warnings: list[str] = []
    logs = parse_log_list(path.read_bytes(), path.name, warn=warnings.append)
    assert warnings == []
    assert parsed_counts(logs) == raw_counts(path)
    for info in logs:
        assert info.log_id == hashlib.sha256(info.key.spki_der).digest()
        assert info.url.startswith(("https://", "http://")) and info.url.endswith("/")
        assert (info.submission_url is not None) == (info.kind == "static-ct")


def test_chrome_2026_concrete_values() -> None:
    logs = parse_log_list(CHROME_2026.read_bytes(), "chrome")
    assert len(logs) == 117
    counts = parsed_counts(logs)
    assert counts[("rfc6962", "usable")] == 21
    assert counts[("static-ct", "usable")] == 16
    assert counts[("static-ct", "qualified")] == 6
    assert counts[("static-ct", "pending")] == 16
    assert counts[("rfc6962", "readonly")] == 2
    by_id = {base64.b64encode(info.log_id).decode(): info for info in logs}
    argon = by_id["1tWNqdAXU/NqSqDHV0kCr+vH3CzTjNn3ZMgMiRkenwI="]
    assert argon.description == "Google 'Argon2027h1'"
    assert argon.url == "https://ct.googleapis.com/logs/us1/argon2027h1/"
    assert (argon.kind, argon.operator, argon.mmd) == ("rfc6962", "Google", 86400)
    readonly = [info for info in logs if info.state == "readonly"]
    assert all(info.final_tree_size and len(info.final_root_hash or b"") == 32 for info in readonly)
    assert 57634084 in {info.final_tree_size for info in readonly}


def test_tiled_logs_keep_monitoring_and_submission_urls() -> None:
    doc = json.loads(CHROME_2026.read_bytes())
    raw = [entry for op in doc["operators"] for entry in op.get("tiled_logs", [])]
    logs = [info for info in parse_log_list(CHROME_2026.read_bytes(), "chrome") if info.kind == "static-ct"]
    assert [info.url for info in logs] == [_slash(entry["monitoring_url"]) for entry in raw]
    assert [info.submission_url for info in logs] == [_slash(entry["submission_url"]) for entry in raw]
    assert any(info.url != info.submission_url for info in logs)


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def test_apple_list_concrete_values() -> None:
    logs = parse_log_list(APPLE.read_bytes(), "apple")
    assert len(logs) == 166
    assert parsed_counts(logs)[("static-ct", "pending")] == 1
    assert {info.state for info in logs} == {"usable", "readonly", "rejected", "pending"}


def test_ct_go_fixture() -> None:
    """A fixture mixing real and fabricated logs: the fabricated "Racketeer" key is no SPKI and is skipped."""
    warnings: list[str] = []
    logs = parse_log_list(CTGO.read_bytes(), CTGO.name, warn=warnings.append)
    assert warnings == [RACKETEER_WARNING]
    counts = raw_counts(CTGO)
    counts[("rfc6962", "unknown")] -= 1
    assert parsed_counts(logs) == +counts
    assert [(info.description, info.state) for info in logs] == [
        ("Google 'Aviator' log", "readonly"),
        ("Google 'Icarus' log", "usable"),
        ("Google 'Rocketeer' log", "usable"),
        ("Google 'Argon2020' log", "qualified"),
        ("Bob's Dubious Log", "retired"),
    ]
    assert logs[-1].url == "https://log.bob.io/"  # the list omits the trailing slash
    assert logs[-1].operator == "Bob's CT Log Shop"


def test_bundled_lists_are_the_snapshots() -> None:
    assert bundled_log_list("chrome") == CHROME_2026.read_bytes()
    assert bundled_log_list("apple") == APPLE.read_bytes()
    with pytest.raises(LogListError, match="no bundled log list 'mozilla'"):
        bundled_log_list("mozilla")


def _mutated(path: Path, change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(path.read_bytes())
    change(doc)
    return json.dumps(doc).encode()


def test_wrong_log_id_skips_only_that_log() -> None:
    def swap_id(doc: dict[str, Any]) -> None:
        log = doc["operators"][0]["logs"][1]
        raw = bytearray(base64.b64decode(log["log_id"]))
        raw[0] ^= 1
        log["log_id"] = base64.b64encode(bytes(raw)).decode()

    warnings: list[str] = []
    logs = parse_log_list(_mutated(CTGO, swap_id), CTGO.name, warn=warnings.append)
    assert [info.description for info in logs] == [
        "Google 'Aviator' log",
        "Google 'Rocketeer' log",
        "Google 'Argon2020' log",
        "Bob's Dubious Log",
    ]
    assert warnings == [
        f"log list {CTGO.name}: skipping operator 'Google' logs[1] (Google 'Icarus' log): "
        "log_id is not the SHA-256 of its key",
        RACKETEER_WARNING,
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda log: log.update(key="AAAA"), "key: LogKey"),
        (lambda log: log.pop("url"), "'url' must be a non-empty string"),
        (lambda log: log.update(url="ftp://x/"), "is not an http(s) URL"),
        (lambda log: log.update(state={"usable": {}, "retired": {}}), "exactly one state"),
        (lambda log: log.update(state={"frozen": {}}), "unknown state 'frozen'"),
        (lambda log: log.update(mmd="1 day"), "mmd must be a non-negative integer"),
    ],
)
def test_broken_log_entry_is_skipped_with_a_warning(
    change: Callable[[dict[str, Any]], None], problem: str
) -> None:
    warnings: list[str] = []
    data = _mutated(CTGO, lambda doc: change(doc["operators"][0]["logs"][0]))
    logs = parse_log_list(data, CTGO.name, warn=warnings.append)
    assert len(logs) == 4
    assert len(warnings) == 2 and problem in warnings[0] and warnings[1] == RACKETEER_WARNING, warnings
    assert "\n" not in warnings[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "log list bad.json: not JSON ("),
        (b"<html>nope</html>", "log list bad.json: not JSON ("),
        (b"\xff\xfe", "log list bad.json: not JSON ("),
        (b"[]", "log list bad.json: not a Chrome v3 or Apple v5 log list (no 'operators' array)"),
        (b'{"operators": {}}', "log list bad.json: not a Chrome v3 or Apple v5 log list"),
        (b'{"operators": [3]}', "log list bad.json: operators[0] is not an object"),
        (
            b'{"operators": [{"name": "X", "logs": {}}]}',
            "log list bad.json: operator 'X': 'logs' is not an array",
        ),
    ],
)
def test_garbage_lists_raise_one_line(data: bytes, message: str) -> None:
    with pytest.raises(LogListError) as caught:
        parse_log_list(data, "bad.json")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_truncated_real_list_is_an_error() -> None:
    data = CHROME_2026.read_bytes()
    with pytest.raises(LogListError, match="not JSON"):
        parse_log_list(data[: len(data) // 2], "chrome")


# --- selection ----------------------------------------------------------------------------------------------


def test_select_default_states() -> None:
    logs = parse_log_list(CHROME_2026.read_bytes(), "chrome")
    chosen = select_logs(logs)
    assert {info.state for info in chosen} == {"usable", "qualified", "readonly"}
    assert len(chosen) == sum(1 for info in logs if info.state in ("usable", "qualified", "readonly"))
    assert len({info.log_id for info in chosen}) == len(chosen)


def test_select_include_exclude_kinds_and_duplicates() -> None:
    logs = parse_log_list(CTGO.read_bytes(), "ct-go")
    icarus, rocketeer = "https://ct.googleapis.com/icarus/", "https://ct.googleapis.com/rocketeer"
    assert [i.url for i in select_logs(logs, include=[icarus, rocketeer.upper()])] == [
        icarus,
        rocketeer + "/",
    ]
    assert icarus not in [i.url for i in select_logs(logs, exclude=[icarus.rstrip("/")])]
    assert [i.state for i in select_logs(logs, states=["retired"])] == ["retired"]
    assert select_logs(logs, kinds=["static-ct"]) == []

    # One log listed under both APIs (as the test log lists itself): one LogInfo, static-ct by default.
    rfc = next(i for i in logs if i.description == "Google 'Icarus' log")
    tiled = LogInfo(**{**rfc.__dict__, "kind": "static-ct", "submission_url": rfc.url})
    assert select_logs([rfc, tiled], include=[icarus]) == [tiled]
    assert select_logs([tiled, rfc], include=[icarus]) == [tiled]
    assert select_logs([rfc, tiled], include=[icarus], kinds=["rfc6962"]) == [rfc]


# --- loading and refreshing ---------------------------------------------------------------------------------


async def serving(body: dict[str, tuple[int, bytes]], test: Callable[[str], Awaitable[None]]) -> list[str]:
    """Serve `body` (path -> (status, bytes), mutable) on 127.0.0.1 while test(base_url) runs; returns
    the User-Agent headers seen."""
    agents: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        agents.append(request.headers.get("User-Agent", ""))
        status, data = body.get(request.path, (404, b"not found"))
        return web.Response(status=status, body=data, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await test(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
    return agents


def test_load_from_path_bundle_and_url(tmp_path: Path) -> None:
    copy_path = tmp_path / "list.json"
    copy_path.write_bytes(CTGO.read_bytes())
    served = {"/list.json": (200, APPLE.read_bytes())}

    async def test(base: str) -> None:
        async with HttpClient() as http:
            assert len(await load_log_list(str(copy_path), http, warn=lambda _: None)) == 5
            assert len(await load_log_list("chrome", http)) == 117
            assert len(await load_log_list("apple", http)) == 166
            assert len(await load_log_list(base + "/list.json", http)) == 166
            with pytest.raises(LogListError) as caught:
                await load_log_list(base + "/missing.json", http)
            assert str(caught.value) == f"log list {base}/missing.json: HTTP 404 (Not Found)"
            with pytest.raises(LogListError, match=r"^log list .*nothing-here\.json: No such file"):
                await load_log_list(str(tmp_path / "nothing-here.json"), http)

    agents = asyncio.run(serving(served, test))
    assert agents and all(agent.startswith("ctsentinel/") and "CT monitor" in agent for agent in agents)


def test_refresh_keeps_the_last_good_list() -> None:
    served = {"/list.json": (200, CTGO.read_bytes())}

    async def test(base: str) -> None:
        async with HttpClient(max_tries=1) as http:
            source = LogListSource(base + "/list.json", http, warn=lambda _: None)
            first = await source.refresh()
            assert len(first) == 5 and source.last_error is None
            served["/list.json"] = (200, b'{"operators": "garbage"}')
            assert await source.refresh() == first
            assert (
                source.last_error is not None and "not a Chrome v3 or Apple v5 log list" in source.last_error
            )
            served["/list.json"] = (503, b"down")
            assert await source.refresh() == first
            assert source.last_error == f"log list {base}/list.json: HTTP 503 after 1 tries"
            fewer = _mutated(CTGO, lambda doc: doc["operators"].pop())
            served["/list.json"] = (200, fewer)
            assert len(await source.refresh()) == 4 and source.last_error is None

    asyncio.run(serving(served, test))


def test_first_load_failure_raises() -> None:
    async def test(base: str) -> None:
        async with HttpClient(max_tries=1) as http:
            with pytest.raises(LogListError):
                await LogListSource(base + "/none.json", http).refresh()

    asyncio.run(serving({}, test))


def test_2024_to_2026_state_transitions() -> None:
    """The same log IDs move between states across two real snapshots (e.g. usable -> readonly/retired)."""
    old = {info.log_id: info.state for info in parse_log_list(CHROME_2024.read_bytes(), "2024")}
    new = {info.log_id: info.state for info in parse_log_list(CHROME_2026.read_bytes(), "2026")}
    moved = {(old[k], new[k]) for k in old.keys() & new.keys() if old[k] != new[k]}
    raw_old = {e["log_id"]: e for op in json.loads(CHROME_2024.read_bytes())["operators"] for e in op["logs"]}
    raw_new = {
        e["log_id"]: e
        for op in json.loads(CHROME_2026.read_bytes())["operators"]
        for s in SECTIONS
        for e in op.get(s, [])
    }
    expected = {
        (
            next(iter(raw_old[k].get("state") or {"unknown": 0})),
            next(iter(raw_new[k].get("state") or {"unknown": 0})),
        )
        for k in raw_old.keys() & raw_new.keys()
    }
    assert moved == {pair for pair in expected if pair[0] != pair[1]}
    assert moved  # there are transitions to see
