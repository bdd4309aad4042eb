"""`ctsentinel testlog populate`: append generated traffic (and a scenario's planted issuances) to a log.

Certificates are built in worker processes, one chunk of log positions each, because signing is the cost
(an RSA-2048 signature is ~0.25 ms); the parent only places planted entries, appends chunks in order with
LogStorage.add(sign=False) and publishes one tree head over everything at the end. DIR/scenario.json
describes the CA hierarchy, every run, and every planted issuance with what a monitor should report.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import multiprocessing
import os
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

from ctsentinel.errors import UserError
from ctsentinel.testlog import revocations
from ctsentinel.testlog.ca import CAHierarchy
from ctsentinel.testlog.issue import Issuer
from ctsentinel.testlog.plant import PlantedEntry, materialize, plant_keys
from ctsentinel.testlog.scenarios import PAIR, SCENARIOS, Plant, Scenario
from ctsentinel.testlog.storage import LogStorage, Submission, SubmissionError
from ctsentinel.testlog.traffic import (
    PROFILES_BY_ID,
    Entry,
    Timeline,
    TrafficConfig,
    TrafficGenerator,
    fresh_rsa_keys,
    make_config,
    worker_chunk,
    worker_init,
)

SCENARIO_FILE = "scenario.json"
FORMAT = "ctsentinel-testlog-scenario/1"
CHUNK = 4096  # positions per generator job: big enough to amortise pickling, small enough to stream
PARALLEL_THRESHOLD = 20_000  # below this, starting worker processes costs more than it saves
_RSA_POOL = 6
Job = tuple[
    int, int, int, tuple[int, ...]
]  # chunk number, start, end, positions reserved for planted entries
WorkerRow = tuple[str, bytes, bool, int]


@dataclass(frozen=True)
class PopulateReport:
    directory: Path
    scenario: str
    seed: int
    entries_added: int
    planted: int
    first_index: int
    tree_size: int
    seconds: float
    disk_bytes: int
    workers: int

    @property
    def entries_per_second(self) -> float:
        return self.entries_added / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"populated {self.directory}: {self.entries_added} entries added "
            f"({self.planted} planted by scenario {self.scenario}, seed {self.seed}) "
            f"in {self.seconds:.1f} s ({self.entries_per_second:,.0f} entries/s, {self.workers} worker(s)); "
            f"tree size {self.tree_size}; {self.disk_bytes / 1e6:,.1f} MB on disk"
        )


def populate(
    directory: Path,
    *,
    entries: int,
    scenario: str | None,
    seed: int,
    workers: int | None = None,
) -> PopulateReport:
    """Append exactly `entries` entries (planted ones included) to the log in `directory`, and integrate."""
    started = time.monotonic()
    directory = Path(directory)
    chosen = _scenario(scenario)
    if entries < 0:
        raise UserError(f"--entries must be at least 0, not {entries}")
    storage = LogStorage.open(directory)
    try:
        previous = _read_scenario_file(directory)
        _refuse_a_second_planting(directory, chosen, previous)
        try:
            hierarchy = CAHierarchy.load_or_create(directory, seed)
        except ValueError as exc:
            raise UserError(f"{directory}/cas: {exc}") from None
        first_index = storage.tree_size + storage.pending_count
        timeline = Timeline.default(entries)
        issuers = {ca.id: Issuer(ca, validation=_validation(ca.id)) for ca in hierarchy if ca.role != "root"}
        plants = chosen.plants(
            random.Random(f"ctsentinel-testlog-scenario:{chosen.name}:{seed}:{first_index}")
        )
        if len(plants) and entries < _planted_count(plants):
            needed = _planted_count(plants)
            raise UserError(f"scenario {chosen.name} plants {needed} entries; --entries {entries} is too few")
        planted, issuances = materialize(
            chosen,
            plants,
            timeline=timeline,
            first_index=first_index,
            issuers=issuers,
            signer=storage.signer,
            keys=plant_keys(seed, [p.key for p in plants]),
            ca_subjects={ca.id: ca.subject for ca in hierarchy},
        )
        chains = {ca.id: hierarchy.chain(ca.id) for ca in hierarchy}
        config = make_config(
            seed, first_index, timeline, hierarchy, storage.signer, fresh_rsa_keys(_RSA_POOL)
        )
        n_workers = _workers(workers, entries)
        batches = _batches(config, entries, planted, n_workers)
        appended = _append(directory, storage, batches, chains, first_index)
        sth = storage.integrate()
        _record_revocations(directory, plants)
        _write_scenario_file(
            directory,
            previous,
            storage,
            hierarchy,
            chosen,
            seed,
            first_index,
            entries,
            timeline,
            planted,
            issuances,
        )
    finally:
        storage.close()
    # Measured after close, when SQLite has folded its write-ahead log back into the database.
    return PopulateReport(
        directory=directory,
        scenario=chosen.name,
        seed=seed,
        entries_added=appended,
        planted=len(planted),
        first_index=first_index,
        tree_size=sth.tree_size,
        seconds=time.monotonic() - started,
        disk_bytes=disk_usage(directory),
        workers=n_workers,
    )


def _refuse_a_second_planting(directory: Path, chosen: Scenario, previous: dict[str, Any]) -> None:
    if chosen.name != "default" and any(r.get("scenario") == chosen.name for r in previous.get("runs", [])):
        # The fina serials are real ones; planting them twice would make one issuer reuse serials.
        raise UserError(f"{directory}: scenario {chosen.name} is already planted in this log")


def _append(
    directory: Path,
    storage: LogStorage,
    batches: Iterable[list[Entry]],
    chains: Mapping[str, Sequence[bytes]],
    first_index: int,
) -> int:
    """Submit every batch, unsigned (integrate signs once at the end); how many entries were added."""
    appended = 0
    for batch in batches:
        submissions = [Submission((e.der, *chains[e.ca_id]), e.precert, e.timestamp) for e in batch]
        try:
            storage.add(submissions, sign=False)
        except SubmissionError as exc:
            raise UserError(f"{directory}: the log refused a generated certificate: {exc}") from None
        appended += len(batch)
        if storage.tree_size + storage.pending_count != first_index + appended:
            # Our SCTs name leaf indexes; another writer would have shifted them.
            raise UserError(f"{directory}: another process appended to the log during populate")
    return appended


def _record_revocations(directory: Path, plants: Sequence[Plant]) -> None:
    revoked = [
        revocations.Revocation(p.ca_id, p.serial, p.revoked_at, p.revocation_reason)
        for p in plants
        if p.revoked_at is not None
    ]
    if revoked:
        revocations.record(directory, revoked)


def _scenario(name: str | None) -> Scenario:
    key = name or "default"
    if key not in SCENARIOS:
        raise UserError(f"unknown scenario {key!r} (known: {', '.join(sorted(SCENARIOS))})")
    return SCENARIOS[key]


def _validation(ca_id: str) -> str:
    profile = PROFILES_BY_ID.get(ca_id)
    return profile.validation if profile else "dv"


def _planted_count(plants: list[Plant]) -> int:
    return sum(2 if p.kind == PAIR else 1 for p in plants)


def _workers(requested: int | None, entries: int) -> int:
    if requested is not None:
        return max(1, requested)
    if entries < PARALLEL_THRESHOLD:
        return 1
    return max(1, os.cpu_count() or 1)


def _jobs(entries: int, planted: list[PlantedEntry]) -> Iterator[Job]:
    reserved: dict[int, list[int]] = collections.defaultdict(list)
    for p in planted:
        reserved[p.position // CHUNK].append(p.position)
    for index, start in enumerate(range(0, entries, CHUNK)):
        yield index, start, min(start + CHUNK, entries), tuple(reserved[index])


def _merge(start: int, end: int, ordinary: list[Entry], planted: dict[int, Entry]) -> list[Entry]:
    out: list[Entry] = []
    it = iter(ordinary)
    for position in range(start, end):
        out.append(planted[position] if position in planted else next(it))
    return out


def _batches(
    config: TrafficConfig, entries: int, planted: list[PlantedEntry], n_workers: int
) -> Iterator[list[Entry]]:
    """Entries for every run position in order, in chunks, generated here or by worker processes."""
    by_position = {p.position: p.entry for p in planted}
    jobs = list(_jobs(entries, planted))
    if n_workers <= 1:
        generator = TrafficGenerator(config)
        for index, start, end, reserved in jobs:
            yield _merge(start, end, generator.chunk(index, start, end, reserved), by_position)
        return
    # spawn, not fork: the parent holds an SQLite connection and maybe threads; children need neither.
    context = multiprocessing.get_context("spawn")
    with context.Pool(n_workers, initializer=worker_init, initargs=(config,)) as pool:
        in_flight: collections.deque[tuple[Job, AsyncResult[list[WorkerRow]]]] = collections.deque()
        pending = iter(jobs)
        limit = 2 * n_workers + 1  # bounded, so a slow disk cannot make results pile up in memory

        def submit() -> None:
            job = next(pending, None)
            if job is not None:
                in_flight.append((job, pool.apply_async(worker_chunk, (job,))))

        for _ in range(limit):
            submit()
        while in_flight:
            (index, start, end, _), result = in_flight.popleft()
            rows = result.get()
            submit()
            ordinary = [Entry(ca_id, der, precert, ts) for ca_id, der, precert, ts in rows]
            yield _merge(start, end, ordinary, by_position)


def disk_usage(directory: Path) -> int:
    """Bytes allocated under `directory`, as du counts them."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a SQLite journal that vanished meanwhile
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


# --- scenario.json ----------------------------------------------------------------------------------------


def _read_scenario_file(directory: Path) -> dict[str, Any]:
    path = directory / SCENARIO_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path}: not a {FORMAT} file")
    return data


def _write_scenario_file(
    directory: Path,
    previous: dict[str, Any],
    storage: LogStorage,
    hierarchy: CAHierarchy,
    scenario: Scenario,
    seed: int,
    first_index: int,
    entries: int,
    timeline: Timeline,
    planted: list[PlantedEntry],
    issuances: list[dict[str, object]],
) -> None:
    by_id = {ca.id: ca for ca in hierarchy}
    runs: list[dict[str, Any]] = list(previous.get("runs", []))
    runs.append(
        {
            "scenario": scenario.name,
            "description": scenario.description,
            "seed": seed,
            "entries": entries,
            "first_index": first_index,
            "end_index": first_index + entries,
            "timeline": {"start_ms": timeline.start_ms, "end_ms": timeline.end_ms},
            "authorized_cas": list(scenario.authorized_cas),
            "rogue_cas": list(scenario.rogue_cas),
            "planted": [p.description for p in planted],
            "issuances": issuances,
        }
    )
    watches: dict[str, dict[str, Any]] = {w["name"]: w for w in previous.get("watches", [])}
    for watch in scenario.watches:
        watches[watch.name] = {
            "name": watch.name,
            "domains": list(watch.domains),
            "ips": list(watch.ips),
            "authorized_cas": list(watch.authorized_cas),
            # In the config's own syntax (DESIGN.md section 4), ready to paste into a [[watch]].
            "authorized_issuers": [f"sha256:{by_id[c].spki_sha256.hex()}" for c in watch.authorized_cas],
        }
    # One alert per issuance and watch it matches (DESIGN.md 1: the precertificate and the certificate
    # of one issuance are one alert).
    expected = [
        {**i, "watch": w} for run in runs for i in run["issuances"] if i["alert"] for w in i["watches"]
    ]
    data = {
        "format": FORMAT,
        # The CAs' CRLs and OCSP: `testlog serve` serves them there (see testlog/ca.py).
        "repository": hierarchy.repository,
        "log": {
            "origin": storage.origin,
            "log_id": base64.b64encode(storage.signer.public_key.log_id).decode("ascii"),
            "key": base64.b64encode(storage.signer.public_key.spki_der).decode("ascii"),
        },
        "tree_size": storage.tree_size,
        "cas": hierarchy.describe(directory),
        "watches": list(watches.values()),
        "runs": runs,
        "expected_alerts": expected,
    }
    path = directory / SCENARIO_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
