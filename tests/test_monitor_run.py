"""`ctsentinel run --once` and `ctsentinel logs` against the real test log over HTTP, storing to SQLite.

The expected content of every log is read independently of the monitor: straight from the test log's
storage, with the (pre)certificate's SHA-256 computed from the leaf and extra_data by ct.tls.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ctsentinel import cli
from ctsentinel.ct.merkle import CompactRange
from ctsentinel.ct.tls import LogEntryType, PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from ctsentinel.testlog.storage import LogStorage
from test_testlog_server import get_sth, wait_for_size
from testlog_client import set_faults, submit
from testlog_pki import Pki, make_leaf, make_pki

ENTRIES = 1500


def expected_entries(directory: Path) -> dict[int, tuple[str, str]]:
    """index -> (hex SHA-256 of the certificate or precertificate, "x509" | "precert")."""
    with LogStorage.open(directory) as storage:
        pairs = storage.get_entries(0, storage.tree_size - 1)
    out = {}
    for index, (leaf, extra) in enumerate(pairs):
        entry = decode_merkle_tree_leaf(leaf).timestamped_entry
        if entry.entry_type == LogEntryType.PRECERT_ENTRY:
            parsed = decode_extra_data(entry.entry_type, extra)
            assert isinstance(parsed, PrecertExtraData)
            out[index] = (hashlib.sha256(parsed.pre_certificate).hexdigest(), "precert")
        else:
            out[index] = (hashlib.sha256(entry.signed_entry).hexdigest(), "x509")
    return out


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, tuple[str, str]], Any]:
    directory = tmp_path_factory.mktemp("monitor") / "log"
    populate(directory, entries=ENTRIES, scenario="fina-1.1.1.1", seed=7)
    scenario = json.loads((directory / "scenario.json").read_text())
    return directory, expected_entries(directory), scenario


@pytest.fixture
def served(
    populated: tuple[Path, dict[int, tuple[str, str]], Any],
    tmp_path: Path,
    testlog_factory: Callable[..., BackgroundLog],
) -> Callable[..., BackgroundLog]:
    """Serve a private copy of the populated log (faults and appends must not leak between tests)."""

    def start(**kwargs: Any) -> BackgroundLog:
        copy = tmp_path / f"log-{len(list(tmp_path.glob('log-*')))}"
        shutil.copytree(populated[0], copy)
        return testlog_factory(copy, **kwargs)

    return start


def log_list(log: BackgroundLog, kind: str) -> Path:
    """The test log's own list, keeping only the section of one API (it lists itself under both)."""
    document = json.loads((log.directory / "log_list.json").read_text())
    for operator in document["operators"]:
        operator["tiled_logs" if kind == "rfc6962" else "logs"] = []
    path = log.directory.parent / f"{log.directory.name}-{kind}.json"
    path.write_text(json.dumps(document))
    return path


def write_config(tmp_path: Path, list_path: Path, *, name: str = "ct", start: str = "beginning",
                 store: str = "all", commit_entries: int = 4096, batch_size: int = 1000,
                 watches: str = "") -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / name}.db"\n'
        f'[logs]\nlist = "{list_path}"\nstart = "{start}"\npoll_interval = 0.2\nbatch_size = {batch_size}\n'
        f'requests_per_second = 1000\n'
        f'[monitor]\nstore = "{store}"\ncommit_entries = {commit_entries}\ndecode_processes = 2\n'
        "deliver_timeout = 3\n"
        + watches
    )
    return config


def run_once(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str, str]:
    code = cli.main(["-c", str(config), "run", "--once"])
    out, err = capsys.readouterr()
    return code, out, err


def logs_json(capsys: pytest.CaptureFixture[str], config: Path) -> list[dict[str, Any]]:
    assert cli.main(["-c", str(config), "logs", "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def db_of(config: Path) -> sqlite3.Connection:
    text = config.read_text()
    path = text.split('sqlite:///', 1)[1].split('"', 1)[0]
    return sqlite3.connect(path)


def stored_entries(config: Path) -> dict[int, tuple[str, str]]:
    with db_of(config) as db:
        rows = db.execute("SELECT idx, hex(cert_sha256), entry_type FROM log_entries").fetchall()
    return {idx: (sha.lower(), kind) for idx, sha, kind in rows}


def log_row(config: Path) -> dict[str, Any]:
    with db_of(config) as db:
        db.row_factory = sqlite3.Row
        (row,) = db.execute("SELECT * FROM logs").fetchall()
        return dict(row)


@pytest.mark.parametrize("kind", ["rfc6962", "static-ct"])
def test_full_catch_up_verifies_and_stores_every_entry(
    kind: str, served: Callable[..., BackgroundLog], populated: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, expected, scenario = populated
    log = served()
    config = write_config(tmp_path, log_list(log, kind), commit_entries=400)
    code, out, err = run_once(capsys, config)
    assert (code, err) == (0, ""), out
    assert f"{ENTRIES:,}/{ENTRIES:,} verified" in out and f"({kind})" in out
    assert stored_entries(config) == expected
    planted = {p["index"]: p["sha256"] for run in scenario["runs"] for p in run["planted"]}
    assert len(planted) == 22
    assert all(expected[i][0] == sha for i, sha in planted.items())
    row = log_row(config)
    head = get_sth(log.url)
    assert row["position"] == row["verified_size"] == ENTRIES == head.tree_size
    assert CompactRange.from_bytes(row["compact_range"]).root() == head.root_hash == row["verified_root"]
    assert not row["misbehaving"] and row["errors"] == 0
    with db_of(config) as db:
        assert db.execute("SELECT count(*) FROM certificates").fetchone()[0] == len(set(expected.values()))
    (status,) = logs_json(capsys, config)
    assert status["type"] == kind and status["url"] == log.url
    assert (status["tree_size"], status["position"], status["backlog"]) == (ENTRIES, ENTRIES, 0)
    assert status["misbehaving"] is False and status["misbehaviour"] == []
    # A second run finds nothing new and processes nothing twice.
    code, out, _ = run_once(capsys, config)
    assert code == 0 and "0 entries" in out
    assert stored_entries(config) == expected


def test_matched_store_keeps_the_watched_certificates(
    served: Callable[..., BackgroundLog], populated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, expected, scenario = populated
    (watch,) = [w for w in scenario["watches"] if w["name"] == "cloudflare-dns"]
    watches = (
        f'[[watch]]\nname = "cloudflare-dns"\ndomains = {json.dumps(watch["domains"])}\n'
        f'ips = {json.dumps(watch["ips"])}\nauthorized_issuers = {json.dumps(watch["authorized_issuers"])}\n'
    )
    log = served()
    config = write_config(tmp_path, log_list(log, "rfc6962"), store="matched", watches=watches)
    code, _, err = run_once(capsys, config)
    assert (code, err) == (0, "")
    planted = {p["index"] for run in scenario["runs"] for p in run["planted"]}
    stored = stored_entries(config)
    assert set(stored) == planted
    assert all(stored[i] == expected[i] for i in stored)
    assert log_row(config)["position"] == ENTRIES


def _add(log: BackgroundLog, pki: Pki, names: list[str]) -> None:
    for name in names:
        submit(log.url, pki.chain(make_leaf(pki.intermediate, [name])))


def test_start_end_skips_the_past_and_reads_what_comes(
    served: Callable[..., BackgroundLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = served()
    for kind in ("rfc6962", "static-ct"):
        config = write_config(tmp_path, log_list(log, kind), name=f"end-{kind}", start="end")
        code, _, err = run_once(capsys, config)
        assert (code, err) == (0, "")
        assert stored_entries(config) == {}
        row = log_row(config)
        assert row["position"] == row["start_index"] == get_sth(log.url).tree_size
    pki = make_pki("End")
    _add(log, pki, [f"new{i}.example.org" for i in range(3)])
    size = wait_for_size(log.url, ENTRIES + 3).tree_size
    assert size == ENTRIES + 3
    after = expected_entries_over_http(log)
    for kind in ("rfc6962", "static-ct"):
        config = tmp_path / f"end-{kind}.toml"
        code, _, err = run_once(capsys, config)
        assert (code, err) == (0, "")
        assert stored_entries(config) == {i: after[i] for i in range(ENTRIES, ENTRIES + 3)}


def expected_entries_over_http(log: BackgroundLog) -> dict[int, tuple[str, str]]:
    return expected_entries(log.directory)


# --- misbehaviour ---------------------------------------------------------------------------------------


def misbehaviour(config: Path) -> list[dict[str, Any]]:
    with db_of(config) as db:
        rows = db.execute("SELECT kind, detail, evidence FROM misbehaviour ORDER BY id").fetchall()
    return [{"kind": k, "detail": d, "evidence": json.loads(e)} for k, d, e in rows]


def assert_reported(capsys: pytest.CaptureFixture[str], config: Path, kind: str, code: int, err: str) -> None:
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and f"misbehaved: {kind}" in err, err
    (status,) = logs_json(capsys, config)
    assert status["misbehaving"] is True
    assert [m["kind"] for m in status["misbehaviour"]] == [kind]


def test_bad_signature_is_caught_before_anything_is_read(
    served: Callable[..., BackgroundLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = served(faults=["bad-sth-signature"])
    for kind in ("rfc6962", "static-ct"):
        config = write_config(tmp_path, log_list(log, kind), name=kind)
        code, _, err = run_once(capsys, config)
        assert_reported(capsys, config, "bad_signature", code, err)
        (found,) = misbehaviour(config)
        assert found["evidence"]["head"]["tree_size"] == ENTRIES
        assert found["evidence"]["head"]["raw"]  # the log's own bytes, for anyone to re-check
        assert stored_entries(config) == {}
        assert log_row(config)["position"] is None


@pytest.mark.parametrize("kind", ["rfc6962", "static-ct"])
def test_bad_entries_stop_at_the_last_proven_chunk(
    kind: str, served: Callable[..., BackgroundLog], populated: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, expected, _ = populated
    log = served(faults=["bad-entries=1111"])
    config = write_config(tmp_path, log_list(log, kind), commit_entries=300)
    code, _, err = run_once(capsys, config)
    assert_reported(capsys, config, "bad_entries", code, err)
    (found,) = misbehaviour(config)
    assert found["evidence"]["chunk"] == [900, 1200]
    assert found["evidence"]["head"]["root_hash"] == get_sth(log.url).root_hash.hex()
    assert found["evidence"]["computed_root"] != found["evidence"]["head"]["root_hash"]
    # Everything before the bad chunk was proven and stored; nothing of it or after it.
    assert stored_entries(config) == {i: expected[i] for i in range(900)}
    assert log_row(config)["position"] == 900


@pytest.mark.parametrize("api", ["rfc6962", "static-ct"])
def test_shrink_and_fork_are_caught_against_the_verified_head(
    api: str, served: Callable[..., BackgroundLog], populated: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, expected, _ = populated
    for fault, kind in (("shrink=5", "shrink"), ("fork", "inconsistent")):
        log = served()
        config = write_config(tmp_path, log_list(log, api), name=fault.split("=")[0])
        assert run_once(capsys, config)[0] == 0
        verified = log_row(config)
        set_faults(log.url, {fault.split("=")[0]: int(fault.split("=")[1]) if "=" in fault else None})
        if kind == "inconsistent":
            _add(log, make_pki("Fork"), ["after-the-fork.example.org"])
            wait_for_size(log.url, ENTRIES + 1)
        else:
            assert get_sth(log.url).tree_size == ENTRIES - 5
        code, _, err = run_once(capsys, config)
        assert_reported(capsys, config, kind, code, err)
        (found,) = misbehaviour(config)
        assert found["evidence"]["verified_head"]["tree_size"] == ENTRIES
        assert found["evidence"]["verified_head"]["root_hash"] == verified["verified_root"].hex()
        new_size = ENTRIES + 1 if kind == "inconsistent" else ENTRIES - 5
        assert found["evidence"]["new_head"]["tree_size"] == new_size
        row = log_row(config)
        assert (row["position"], row["verified_size"], row["verified_root"]) == (
            ENTRIES, ENTRIES, verified["verified_root"])
        assert stored_entries(config) == expected


@pytest.mark.parametrize("api", ["rfc6962", "static-ct"])
def test_a_malformed_certificate_is_stored_with_its_error_not_misbehaviour(
    api: str, served: Callable[..., BackgroundLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = served()
    set_faults(log.url, {"malformed-entry": None})
    _add(log, make_pki("Bad"), ["broken.example.org"])
    wait_for_size(log.url, ENTRIES + 1)
    config = write_config(tmp_path, log_list(log, api))
    code, _, err = run_once(capsys, config)
    assert (code, err) == (0, "")
    assert misbehaviour(config) == []
    with db_of(config) as db:
        (error,) = db.execute(
            "SELECT c.error FROM log_entries e JOIN certificates c ON c.sha256 = e.cert_sha256"
            " WHERE e.idx = ?",
            (ENTRIES,),
        ).fetchone()
        assert error
        assert db.execute("SELECT count(*) FROM log_entries").fetchone()[0] == ENTRIES + 1


# --- HTTP trouble is survived ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        {"rate-limit": 1},
        {"server-error": 3},
        {"slow": 0.05},
        {"short-entries": 37},
        {"truncated-json": None},
        {"rate-limit-no-retry-after": 1},
    ],
    ids=lambda f: next(iter(f)),
)
def test_http_faults_are_survived(
    faults: dict[str, object], served: Callable[..., BackgroundLog], populated: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, expected, _ = populated
    log = served(batch_size=1000)
    set_faults(log.url, faults)
    if "truncated-json" in faults:
        # Nothing can be read while every body is cut: the run records errors and retries until it clears.
        timer = threading.Timer(1.5, lambda: set_faults(log.url, clear=["truncated-json"]))
        timer.start()
    config = write_config(tmp_path, log_list(log, "rfc6962"))
    code, out, err = run_once(capsys, config)
    assert (code, err) == (0, ""), out
    assert stored_entries(config) == expected
    row = log_row(config)
    assert row["position"] == ENTRIES
    if "truncated-json" in faults:
        assert row["errors"] >= 1 and "JSON" in row["last_error"]


def test_logs_shows_alerts_left_undelivered(
    served: Callable[..., BackgroundLog], populated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from notify_helpers import free_port

    _, _, scenario = populated
    (watch,) = [w for w in scenario["watches"] if w["name"] == "cloudflare-dns"]
    hook = f"http://127.0.0.1:{free_port()}/hook"
    watches = (
        f'[[watch]]\nname = "cloudflare-dns"\ndomains = {json.dumps(watch["domains"])}\n'
        f'ips = {json.dumps(watch["ips"])}\nauthorized_issuers = {json.dumps(watch["authorized_issuers"])}\n'
        f'[[notify]]\nkind = "webhook"\nurl = "{hook}"\nretry_base = 0.05\nretry_cap = 0.2\n'
    )
    log = served()
    config = write_config(tmp_path, log_list(log, "rfc6962"), store="matched", watches=watches)
    code, _, err = run_once(capsys, config)
    assert code == 0 and "still pending" in err
    alerts = len(scenario["expected_alerts"])
    assert cli.main(["-c", str(config), "logs"]) == 0
    out = capsys.readouterr().out
    shown = hook.removesuffix("hook") + "…"  # the receiver by scheme, host and port: no path
    # (Each alert's revocation news, their CA having revoked them, waits too, on lines of its own.)
    lines = [line for line in out.splitlines() if "delivery of alert #" in line]
    assert len(lines) == alerts, out
    # the channel by its kind and destination, the receiver by scheme, host and port
    assert all(f"to webhook:{shown}#" in line and f"{shown}: cannot connect" in line for line in lines), out
    assert "/hook" not in out


def test_a_lying_log_does_not_stop_the_others(
    populated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    testlog_factory: Callable[..., BackgroundLog],
) -> None:
    _, expected, _ = populated
    liar_dir, honest_dir = tmp_path / "liar", tmp_path / "honest"
    shutil.copytree(populated[0], liar_dir)
    populate(honest_dir, entries=300, scenario=None, seed=5)
    liar = testlog_factory(liar_dir, faults=["bad-entries=700"])
    honest = testlog_factory(honest_dir)
    documents = [json.loads(Path(log_list(log, "rfc6962")).read_text()) for log in (liar, honest)]
    both = tmp_path / "both.json"
    both.write_text(json.dumps({**documents[0], "operators": [*documents[0]["operators"],
                                                              *documents[1]["operators"]]}))
    config = write_config(tmp_path, both, commit_entries=500)
    code, out, err = run_once(capsys, config)
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith(f"ctsentinel: log {liar.url} misbehaved: bad_entries: entries [500, 1000) ")
    with db_of(config) as db:
        rows = dict(db.execute("SELECT url, position FROM logs").fetchall())
        assert rows == {liar.url: 500, honest.url: 300}
        liar_rows = db.execute(
            "SELECT idx, lower(hex(cert_sha256)), entry_type FROM log_entries JOIN logs ON logs.id = log"
            " WHERE url = ?", (liar.url,)).fetchall()
    assert {i: (sha, kind) for i, sha, kind in liar_rows} == {i: expected[i] for i in range(500)}
    assert "300/300 verified" in out and "MISBEHAVING (bad_entries)" in out


def test_a_log_that_stays_broken_is_reported_not_caught_up(
    served: Callable[..., BackgroundLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = served()
    set_faults(log.url, {"truncated-json": None})
    config = write_config(tmp_path, log_list(log, "rfc6962"))
    code, out, err = run_once(capsys, config)
    assert code == 1 and "NOT caught up" in out
    (line,) = err.splitlines()
    assert line.startswith(f"ctsentinel: log {log.url} not caught up: {log.url}ct/v1/get-sth")
    assert "JSON" in line
    row = log_row(config)
    assert row["errors"] == 3 and row["position"] is None and not row["misbehaving"]
    assert stored_entries(config) == {}
