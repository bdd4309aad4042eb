"""Large batches, as a backfill with store = "all" commits them: on PostgreSQL they go through COPY (with a
temporary table where rows may collide), and must store exactly what the row-by-row path stores on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import pg_cluster
from ctsentinel.store import Store, dialect, parse_query
from ctsentinel.store.dialect import COPY_MIN_ROWS
from store_certs import Feed, issue, log_info, make_ca, pair_entries

ISSUANCES = 120  # 240 entries, 240 certificates, names and addresses: past COPY_MIN_ROWS in every table


@pytest.fixture(scope="module", params=pg_cluster.KINDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pg_cluster.database(request.param, tmp_path_factory.mktemp("bulk")) as database_url:
        yield database_url


TABLES = ("certificates", "log_entries", "cert_names", "cert_ips", "issuances")


def _counts(store: Store, url: str) -> dict[str, int]:
    rows = store.stats(url).rows
    return {name: rows[name] for name in TABLES}


def test_a_large_batch_stores_every_row_once(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = make_ca("Bulk CA")
    made = [issue(ca, [f"h{n}.bulk.example", f"www.h{n}.bulk.example"], [f"10.0.{n // 250}.{n % 250}"])
            for n in range(ISSUANCES)]  # fmt: skip
    entries = [entry for issuance in made for entry in pair_entries(issuance)]
    assert ISSUANCES >= COPY_MIN_ROWS
    copied: list[str] = []
    copy = dialect._copy

    def counted(conn: Any, table: Any, *rest: Any) -> None:
        copied.append(table.name)
        copy(conn, table, *rest)

    monkeypatch.setattr(dialect, "_copy", counted)
    store = Store.open(url)
    try:
        # One log, one batch: the repeated last certificate collides within the batch itself.
        Feed(store, log_info("bulk-a")).commit([*entries, entries[-1]])
        first = _counts(store, url)
        # A second log carrying the same certificates: every certificate, name and address row collides.
        Feed(store, log_info("bulk-b")).commit(entries)
        second = _counts(store, url)
        found = store.search(parse_query("h7.bulk.example"), limit=10)
        by_ip = store.search(parse_query("10.0.0.0/16"), limit=1000)
    finally:
        store.close()
    certs = 2 * ISSUANCES
    assert first == {
        "certificates": certs,
        "log_entries": certs + 1,
        "cert_names": 2 * certs,
        "cert_ips": certs,
        "issuances": ISSUANCES,
    }
    assert second == {**first, "log_entries": 2 * certs + 1}
    (result,) = found
    assert result.record.dns_names == ["h7.bulk.example", "www.h7.bulk.example"]
    assert {entry.log for entry in result.entries} >= {"https://bulk-a.example/", "https://bulk-b.example/"}
    assert len(by_ip) == ISSUANCES
    if url.startswith("postgresql"):  # every large table went through COPY, both with and without collisions
        assert {"certificates", "log_entries", "cert_names", "cert_ips"} <= set(copied)
    else:
        assert copied == []
