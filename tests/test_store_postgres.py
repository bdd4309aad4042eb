"""PostgreSQL readiness without a server: every statement the store issues compiles for the postgresql
dialect, and the parts that differ by backend come out as PostgreSQL needs them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_mock_engine

from ctsentinel.store import parse_query, schema
from ctsentinel.store.dialect import _compile, _on_conflict
from ctsentinel.store.rows import CERT_COLUMNS, ENTRY_COLUMNS, IP_COLUMNS, NAME_COLUMNS
from ctsentinel.store.search import _matching


@pytest.fixture
def pg() -> Any:
    statements: list[str] = []
    engine = create_mock_engine(
        "postgresql+psycopg://",
        lambda sql, *a, **k: statements.append(str(sql.compile(dialect=engine.dialect))),
    )
    engine.statements = statements
    return engine


def test_schema_ddl_for_postgresql(pg: Any) -> None:
    schema.metadata.create_all(pg, checkfirst=False)
    ddl = "\n".join(pg.statements)
    assert "BYTEA" in ddl and "BIGINT" in ddl and "TIMESTAMP WITH TIME ZONE" in ddl and "BOOLEAN" in ddl
    assert 'name_rev TEXT COLLATE "C" NOT NULL' in ddl  # range scans need bytewise order
    assert 'issuance TEXT COLLATE "C" NOT NULL' in ddl
    assert "WITHOUT ROWID" not in ddl


@pytest.mark.parametrize(
    ("table", "columns", "conflict"),
    [
        (schema.certificates, CERT_COLUMNS, ["sha256"]),
        (schema.log_entries, ENTRY_COLUMNS, None),
        (schema.cert_names, NAME_COLUMNS, ["name_rev", "cert_sha256"]),
        (schema.cert_ips, IP_COLUMNS, ["ip", "cert_sha256"]),
    ],
)
def test_bulk_inserts_compile_for_postgresql(
    pg: Any, table: Any, columns: tuple[str, ...], conflict: Any
) -> None:
    bulk = _compile(pg, table, columns, conflict)
    assert bulk.order is None and bulk.names == columns  # pyformat: rows become dicts
    assert bulk.sql.startswith(f"INSERT INTO {table.name} (")
    if conflict:
        assert bulk.sql.endswith(f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING")
    for name in columns:
        assert f"%({name})s" in bulk.sql


def test_upsert_and_search_compile_for_postgresql(pg: Any) -> None:
    stmt = _on_conflict(pg, schema.tree_heads).values(
        log=1, tree_size=2, timestamp=3, root_hash=b"", raw=b"", verified=True, first_seen=None
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["log", "tree_size", "root_hash"], set_={"verified": stmt.excluded.verified}
    )
    assert "ON CONFLICT (log, tree_size, root_hash) DO UPDATE" in str(stmt.compile(dialect=pg.dialect))
    for query in (
        "example.com",
        "*.example.com",
        "10.0.0.0/8",
        "sha256:" + "ab" * 32,
        "serial:0a",
        "issuer:x",
    ):
        sql = str(_matching(parse_query(query)).limit(5).compile(dialect=pg.dialect))
        assert "LIMIT" in sql and "GROUP BY certificates.issuance" in sql
