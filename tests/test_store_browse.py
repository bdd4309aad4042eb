"""Store.browse, Store.alert_states and the time limit, on SQLite and on a live PostgreSQL alike."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import pg_cluster
from ctsentinel.store import Store, parse_query
from ctsentinel.store.alert_states import AlertNotFound, AlertStateConflict
from ctsentinel.store.browse import NameMatch
from ctsentinel.store.browse_models import SearchFilters
from ctsentinel.store.engine import make_engine
from ctsentinel.store.models import AlertState
from ctsentinel.store.timelimit import QueryTimeout, TimeLimitedDatabase
from ctsentinel.watch.finding import Finding, Reason
from ctsentinel.watch.severity import Severity
from store_certs import Feed, issue, log_info, make_ca, pair_entries


@pytest.fixture(scope="module", params=pg_cluster.KINDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pg_cluster.database(request.param, tmp_path_factory.mktemp("browse")) as database_url:
        yield database_url


@pytest.fixture(scope="module")
def world(url: str) -> Iterator[tuple[Store, Store, dict[str, object]]]:
    writer = Store.open(url)
    fina, other = make_ca("Fina RDC 2020", "Financijska agencija"), make_ca("Other CA", "Other")
    feed = Feed(writer, log_info("browse"))
    finding = Finding("dns", Reason.UNAUTHORIZED_ISSUER, Severity.CRITICAL, ("1.1.1.1",))
    made = {}
    for n in range(12):
        made[f"fina{n}"] = issue(fina, [f"test{n}.hr"], ["1.1.1.1"])
        feed.commit(pair_entries(made[f"fina{n}"], [finding]))
    made["apex"] = issue(other, ["example.com", "*.example.com"])
    feed.commit(pair_entries(made["apex"]))
    made["www"] = issue(other, ["www.example.com"], ["2606:4700::1"])
    feed.commit([("x509", made["www"].cert, made["www"].cert_der, [])])
    reader = Store.open_for_browsing(url, time_limit=5.0)
    yield writer, reader, made
    reader.close()
    writer.close()


def test_every_kind_pages_by_issuance(world: tuple[Store, Store, dict[str, object]]) -> None:
    _, reader, made = world
    browse = reader.browse
    page = browse.search(parse_query("1.1.1.1"), limit=5)
    assert len(page.items) == 5 and page.more
    ids = [i.id for i in page.items]
    assert ids == sorted(ids, reverse=True)
    rest = browse.search(parse_query("1.1.1.1"), limit=100, after=ids[-1])
    assert len(rest.items) == 7 and not rest.more and not set(ids) & {i.id for i in rest.items}
    assert all(len(i.found.fingerprints) == 2 for i in page.items)  # precertificate and certificate: one
    oldest = browse.search(parse_query("1.0.0.0/8"), limit=100, oldest_first=True)
    assert [i.id for i in oldest.items] == sorted(i.id for i in oldest.items)
    assert len(browse.search(parse_query("issuer:fina"), limit=100).items) == 12
    assert len(browse.search(parse_query("issuer:%"), limit=100).items) == 0
    assert len(browse.search(parse_query("example.com"), limit=100).items) == 2
    # "*.example.com" is a name below example.com too.
    assert len(browse.search(parse_query("*.example.com"), limit=100).items) == 2
    assert len(browse.search(NameMatch(exact=("example.com",)), limit=100).items) == 1
    assert len(browse.search(NameMatch(exact=("*.example.com",)), limit=100).items) == 1
    assert len(browse.search(parse_query("2606:4700::/32"), limit=100).items) == 1
    www = made["www"]
    assert (
        browse.search(parse_query(f"sha256:{www.cert.sha256}"), limit=9).items[0].record.sha256
        == www.cert.sha256
    )  # type: ignore[attr-defined]
    assert len(browse.search(parse_query(f"serial:{www.cert.serial}"), limit=9).items) == 1  # type: ignore[attr-defined]
    assert browse.search(parse_query("1.1.1.1"), SearchFilters(watch="dns"), limit=100).items
    assert not browse.search(parse_query("1.1.1.1"), SearchFilters(watch="other"), limit=100).items
    assert not browse.search(
        parse_query("1.1.1.1"), SearchFilters(unexpired_at="9999-01-01T00:00:00Z"), limit=9
    ).items


def test_certificate_timeline_and_ca(world: tuple[Store, Store, dict[str, object]]) -> None:
    _, reader, made = world
    fina0 = made["fina0"]
    view = reader.browse.certificate(bytes.fromhex(fina0.precert.sha256))  # type: ignore[attr-defined]
    assert view is not None and view.record.precert and len(view.siblings) == 1 and len(view.alerts) == 1
    assert view.pem and view.pem.startswith("-----BEGIN CERTIFICATE-----")
    assert reader.browse.certificate(b"\0" * 32) is None
    bars = reader.browse.timeline([parse_query("1.1.1.1"), parse_query("example.com")])
    assert sum(b.count for b in bars) == 14
    spki = bytes.fromhex(fina0.cert.issuer_spki_sha256)  # type: ignore[attr-defined]
    report = reader.browse.ca_report(spki)
    assert report is not None and report.issuances == 12 and report.identifiers == {"dns": 12, "ip": 12}
    assert len(report.alerts) == 12 and reader.browse.ca_report(b"\1" * 32) is None
    assert len(reader.browse.issuers(limit=10).items) == 2


def test_alert_states(world: tuple[Store, Store, dict[str, object]]) -> None:
    writer, reader, _ = world
    alert = reader.browse.alerts(state=AlertState.OPEN, limit=1).items[0]
    writer.alert_states.move(alert.id, AlertState.ACKNOWLEDGED, note="on it", actor="alice")
    with pytest.raises(AlertStateConflict):
        writer.alert_states.move(alert.id, AlertState.ACKNOWLEDGED, note="", actor="bob")
    writer.alert_states.move(alert.id, AlertState.RESOLVED, note="revoked", actor="bob")
    with pytest.raises(AlertNotFound):
        writer.alert_states.move(999999, AlertState.RESOLVED, note="", actor="bob")
    history = reader.alert_states.history([alert.id])[alert.id]
    assert [(a.state, a.actor, a.note) for a in history] == [
        (AlertState.ACKNOWLEDGED, "alice", "on it"),
        (AlertState.RESOLVED, "bob", "revoked"),
    ]
    assert reader.browse.alert(alert.id).state is AlertState.RESOLVED  # type: ignore[union-attr]
    assert {a.id for a in writer.list_alerts()} >= {alert.id}
    counts = reader.browse.alert_counts()
    assert counts[AlertState.RESOLVED] == 1 and sum(counts.values()) == 12


def test_the_reader_cannot_write(world: tuple[Store, Store, dict[str, object]]) -> None:
    _, reader, _ = world
    alert = reader.browse.alerts(state=AlertState.OPEN, limit=1).items[0]
    with pytest.raises(Exception, match=r"read-only|readonly|attempt to write"):
        reader.alert_states.move(alert.id, AlertState.RESOLVED, note="", actor="mallory")


def test_a_slow_query_is_stopped_at_the_time_limit(url: str, world: object) -> None:
    db = TimeLimitedDatabase(make_engine(url, read_only=True), "test", 0.3)
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT count(*) FROM n"
    )
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"longer than 0\.3 s"), db.read() as conn:
        conn.exec_driver_sql(slow).scalar()
    assert time.monotonic() - started < 3
    with db.read() as conn:  # the connection is fine afterwards
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    db.close()


def test_upgrading_numbers_the_issuances_already_stored(tmp_path_factory: pytest.TempPathFactory) -> None:
    import sqlite3

    db = tmp_path_factory.mktemp("upgrade") / "ct.db"
    store = Store.open(str(db))
    ca = make_ca("Upgrade CA")
    feed = Feed(store, log_info("upgrade"))
    made = [issue(ca, [f"n{i}.example"], ["192.0.2.1"] if i % 2 else []) for i in range(6)]
    for issuance in made:
        feed.commit(pair_entries(issuance))
    before = [(i.id, i.record.serial) for i in store.browse.search(parse_query("example"), limit=100).items]
    store.close()
    with sqlite3.connect(db) as conn:  # the database as revision 0006 left it
        for table in ("alert_actions", "issuances", "issuers"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE alerts DROP COLUMN state")
        conn.execute("UPDATE alembic_version SET version_num = '0006_request_rate'")
    store = Store.open(str(db))
    after = [(i.id, i.record.serial) for i in store.browse.search(parse_query("example"), limit=100).items]
    assert after == before and len(after) == 6  # numbered in the order first seen, as commits number them
    spki = bytes.fromhex(made[0].cert.issuer_spki_sha256 or "")
    report = store.browse.ca_report(spki)
    assert report is not None and report.issuances == 6 and report.identifiers == {"dns": 6, "ip": 3}
    store.close()


def test_the_revision_makes_what_schema_py_declares(tmp_path_factory: pytest.TempPathFactory) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ctsentinel.store import schema

    db = tmp_path_factory.mktemp("drift") / "ct.db"
    Store.open(str(db)).close()
    engine = make_engine(str(db))
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    engine.dispose()
    mine = [
        d
        for d in diffs
        if any(name in repr(d) for name in ("issuances", "issuers", "alert_actions", "state"))
    ]
    assert mine == []
