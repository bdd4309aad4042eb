"""search QUERY: parsing with one-line errors, and every query kind against a real store."""

from __future__ import annotations

import ipaddress
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from ctsentinel.cli import main
from ctsentinel.errors import UserError
from ctsentinel.store import QueryError, Store, parse_query
from ctsentinel.store.keys import ip_key, reverse_name
from store_certs import Feed, Issuance, issue, log_info, make_ca, pair_entries

RECORD_KEYS = [
    "serial",
    "issuer",
    "issuer_spki_sha256",
    "subject",
    "subject_spki_sha256",
    "dns_names",
    "ip_addresses",
    "not_before",
    "not_after",
    "sha256",
    "tbs_sha256",
    "precert",
    "error",
]


class World:
    """One store holding a handful of issuances; `names` maps a label to its issuance."""

    def __init__(self, store: Store, path: Path) -> None:
        self.path = path
        self.store = store
        self.fina = make_ca("Fina RDC 2020", "Financijska agencija")
        self.other = make_ca("Other 100% CA", "Other")
        self.by: dict[str, Issuance] = {
            "apex": issue(self.fina, ["example.com"], serial=0x0A1B2C),
            "www": issue(self.fina, ["www.example.com"]),
            "wild": issue(self.fina, ["*.example.com"]),
            "deep": issue(self.other, ["a.b.example.com"]),
            "lookalike": issue(self.other, ["notexample.com", "example.com.evil.org", "example.co"]),
            "idn": issue(self.other, ["xn--bcher-kva.example", "www.xn--bcher-kva.example"]),
            "v4": issue(self.fina, ["one.one.one.one"], ["1.1.1.1", "1.0.0.1"], serial=0x07),
            "v4edge": issue(self.other, [], ["0.0.0.0", "255.255.255.255"]),
            "v6": issue(
                self.other, [], ["2606:4700:4700::1111", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
            ),
        }
        feed = Feed(store, log_info("search"))
        self.index: dict[str, int] = {}
        for label, issuance in self.by.items():
            self.index[label] = feed.position
            feed.commit(pair_entries(issuance))

    def labels(self, query: str, limit: int = 100) -> set[str]:
        found = self.store.search(query, limit)
        shas = {sha: label for label, i in self.by.items() for sha in (i.precert.sha256, i.cert.sha256)}
        out = set()
        for result in found:
            labels = {shas[s] for s in result.fingerprints}
            assert len(labels) == 1
            out |= labels
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = tmp_path_factory.mktemp("search") / "ct.db"
    store = Store.open(str(path))
    yield World(store, path)
    store.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("example.com", {"apex", "www", "wild", "deep"}),
        ("EXAMPLE.com.", {"apex", "www", "wild", "deep"}),
        ("*.example.com", {"www", "wild", "deep"}),
        ("b.example.com", {"deep"}),
        ("www.example.com", {"www"}),
        ("example.co", {"lookalike"}),
        ("com", {"apex", "www", "wild", "deep", "lookalike"}),
        ("evil.org", {"lookalike"}),
        ("nothing.example", set()),
        ("bücher.example", {"idn"}),
        ("BÜCHER.example", {"idn"}),
        ("xn--bcher-kva.example", {"idn"}),
        ("*.bücher.example", {"idn"}),
        ("*.www.bücher.example", set()),
    ],
)
def test_names(world: World, query: str, expected: set[str]) -> None:
    assert world.labels(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("1.1.1.1", {"v4"}),
        ("::ffff:1.1.1.1", {"v4"}),  # the IPv4-mapped form is the same address
        ("1.1.1.2", set()),
        ("1.1.1.0/24", {"v4"}),
        ("1.1.1.1/32", {"v4"}),
        ("1.1.1.77/24", {"v4"}),  # host bits are ignored, as `ip` tools do
        ("1.0.0.0/8", {"v4"}),
        ("1.1.2.0/24", set()),
        ("0.0.0.0/0", {"v4", "v4edge"}),  # every IPv4 address, no IPv6 one
        ("0.0.0.0", {"v4edge"}),
        ("255.255.255.255", {"v4edge"}),
        ("255.255.255.255/32", {"v4edge"}),
        ("::ffff:0:0/96", {"v4", "v4edge"}),  # the mapped block is IPv4
        ("::/0", {"v4", "v4edge", "v6"}),  # everything, IPv4 included (mapped)
        ("::", {"v6"}),
        ("::/128", {"v6"}),
        ("2606:4700::/32", {"v6"}),
        ("2606:4700:4700::1111", {"v6"}),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", {"v6"}),
        ("8000::/1", {"v6"}),
    ],
)
def test_addresses(world: World, query: str, expected: set[str]) -> None:
    assert world.labels(query) == expected


def test_sha256_finds_the_issuance_by_either_certificate_or_tbs(world: World) -> None:
    i = world.by["www"]
    for digest in (i.precert.sha256, i.cert.sha256, i.cert.tbs_sha256, i.cert.sha256.upper()):
        assert world.labels(f"sha256:{digest}") == {"www"}
    flipped = ("0" if i.cert.sha256[0] != "0" else "1") + i.cert.sha256[1:]
    assert world.labels(f"sha256:{flipped}") == set()


@pytest.mark.parametrize(
    "query", ["serial:0a1b2c", "serial:0A:1B:2C", "serial:a1b2c", "serial:000a1b2c", "SERIAL:0a:1b:2c"]
)
def test_serial_forms(world: World, query: str) -> None:
    assert world.labels(query) == {"apex"}


def test_serial_is_not_a_prefix_match(world: World) -> None:
    assert world.labels("serial:07") == {"v4"}
    assert world.labels("serial:0a1b") == set()
    assert world.labels("serial:0a1b2c2d") == set()


def test_issuer_substring(world: World) -> None:
    fina = {"apex", "www", "wild", "v4"}
    assert world.labels("issuer:fina rdc") == fina
    assert world.labels("issuer:FINANCIJSKA") == fina
    assert world.labels("issuer:100%") == {"deep", "lookalike", "idn", "v4edge", "v6"}
    assert world.labels("issuer:_") == set()  # LIKE wildcards are literal
    assert world.labels("issuer:nobody") == set()


def test_result_is_one_record_per_issuance(world: World) -> None:
    [result] = world.store.search("www.example.com")
    i = world.by["www"]
    record = result.record  # the final certificate's, as `search --json` prints it
    assert list(record.to_json()) == RECORD_KEYS
    assert result.fingerprints == (i.precert.sha256, i.cert.sha256)
    assert record.sha256 == i.cert.sha256
    assert record.precert is False and record.tbs_sha256 == i.cert.tbs_sha256
    assert record.serial == i.cert.serial and record.issuer == "CN=Fina RDC 2020,O=Financijska agencija"
    assert record.dns_names == ["www.example.com"]
    n = world.index["www"]
    assert [entry.to_json() for entry in result.entries] == [
        {"log": "https://search.example/", "index": n, "type": "precert"},
        {"log": "https://search.example/", "index": n + 1, "type": "cert"},
    ]


def test_limit_and_order(world: World) -> None:
    assert len(world.store.search("example.com", limit=2)) == 2
    assert world.store.search("example.com", limit=0) == []
    everything = world.store.search("::/0")
    assert len(everything) == 3


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("", "empty query"),
        ("   ", "empty query"),
        ("exa mple.com", "not a valid domain"),
        ("a..b", "not a valid domain"),
        ("*.", "not a domain"),
        ("foo.*.com", "not a domain"),
        ("1.1.1.1/33", "not a CIDR network"),
        ("10.0.0.0/x", "not a CIDR network"),
        ("sha256:abcd", "needs 64 hex digits"),
        ("sha256:" + "g" * 64, "needs 64 hex digits"),
        ("serial:xyz", "needs hex digits"),
        ("serial:", "needs hex digits"),
        ("serial:0a::1b", "needs hex digits"),
        ("issuer:", "needs some text"),
    ],
)
def test_bad_queries_are_one_line_user_errors(query: str, needle: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_query(query)
    assert isinstance(err.value, UserError)
    assert "\n" not in str(err.value) and needle in str(err.value)


def test_parsed_query_values() -> None:
    assert parse_query("Bücher.Example").value == "xn--bcher-kva.example"
    assert parse_query("*.example.com").kind == "subdomains"
    assert parse_query("serial:00:0A").value == "0a"
    assert parse_query("serial:0").value == "00"
    q = parse_query("10.0.0.0/8")
    assert (q.kind, q.low, q.high) == (
        "cidr",
        ip_key(ipaddress.ip_address("10.0.0.0")),
        ip_key(ipaddress.ip_address("10.255.255.255")),
    )
    assert len(q.low or b"") == 16 and (q.low or b"")[:12] == bytes(10) + b"\xff\xff"


# -- properties: the index scans agree with the plain definitions -----------------------------------------

LABELS = ["a", "b", "ab", "a-b", "xn--bcher-kva", "c"]
_RNG = random.Random(6962)


def _random_name() -> str:
    return ".".join(_RNG.choice(LABELS) for _ in range(_RNG.randint(1, 4)))


def _random_ip() -> str:
    if _RNG.random() < 0.5:
        return str(
            ipaddress.IPv4Address(_RNG.choice([0x0A000000, 0xC0A80000, 0xFFFFFF00]) + _RNG.randrange(256))
        )
    return str(ipaddress.IPv6Address((0x2001_0DB8 << 96) + (_RNG.randrange(4) << 64) + _RNG.randrange(256)))


class Random:
    def __init__(self, store: Store, path: Path) -> None:
        self.path = path
        self.store = store
        ca = make_ca("Property CA")
        self.items: list[tuple[Issuance, list[str], list[str]]] = []
        feed = Feed(store, log_info("property"))
        for _ in range(30):
            names = sorted({_random_name() for _ in range(_RNG.randint(0, 3))})
            ips = sorted({_random_ip() for _ in range(_RNG.randint(0, 2))})
            i = issue(ca, names, ips)
            self.items.append((i, names, ips))
            feed.commit([("x509", i.cert, None, [])])

    def found(self, query: str) -> set[str]:
        return {r.fingerprints[0] for r in self.store.search(query, limit=1000)}


@pytest.fixture(scope="module")
def randomized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Random]:
    path = tmp_path_factory.mktemp("property") / "ct.db"
    store = Store.open(str(path))
    yield Random(store, path)
    store.close()


@settings(max_examples=60, deadline=None)
@given(domain=st.lists(st.sampled_from(LABELS), min_size=1, max_size=3).map(".".join), wildcard=st.booleans())
def test_name_scan_matches_definition(randomized: Random, domain: str, wildcard: bool) -> None:
    def covers(name: str) -> bool:
        below = name.endswith("." + domain)
        return below if wildcard else below or name == domain

    expected = {i.cert.sha256 for i, names, _ in randomized.items if any(covers(n) for n in names)}
    assert randomized.found(("*." if wildcard else "") + domain) == expected


@settings(max_examples=60, deadline=None)
@given(
    network=st.one_of(
        st.builds(
            lambda a, p: ipaddress.ip_network((a, p), strict=False),
            st.sampled_from([0x0A000000, 0xC0A80000, 0xFFFFFF00])
            .flatmap(lambda base: st.integers(base, min(base + 600, 0xFFFFFFFF)))
            .map(ipaddress.IPv4Address),
            st.integers(0, 32),
        ),
        st.builds(
            lambda a, p: ipaddress.ip_network((a, p), strict=False),
            st.integers(0, 4 << 64).map(lambda x: ipaddress.IPv6Address((0x2001_0DB8 << 96) + x)),
            st.integers(0, 128),
        ),
    )
)
def test_cidr_scan_matches_definition(randomized: Random, network: ipaddress.IPv4Network) -> None:
    expected = {
        i.cert.sha256
        for i, _, ips in randomized.items
        if any(
            ipaddress.ip_address(a).version == network.version and ipaddress.ip_address(a) in network
            for a in ips
        )
    }
    if network.version == 6 and network.prefixlen <= 80:
        # A wide IPv6 net also spans ::ffff:0:0/96 (IPv4, mapped) when it contains it.
        mapped = ipaddress.ip_network("::ffff:0:0/96")
        if mapped.subnet_of(network):
            expected |= {
                i.cert.sha256
                for i, _, ips in randomized.items
                if any(ipaddress.ip_address(a).version == 4 for a in ips)
            }
    assert randomized.found(str(network)) == expected


@given(st.text(alphabet="abc.-", min_size=1, max_size=30))
@settings(max_examples=100, deadline=None)
def test_reverse_name_is_an_involution_keeping_subdomains_adjacent(name: str) -> None:
    assert reverse_name(reverse_name(name)) == name
    child = "x." + name
    assert reverse_name(child).startswith(reverse_name(name) + ".")


@pytest.mark.parametrize(
    ("query", "plan"),
    [
        ("example.com", "SEARCH cert_names USING PRIMARY KEY (name_rev>? AND name_rev<?)"),
        ("*.example.com", "SEARCH cert_names USING PRIMARY KEY (name_rev>? AND name_rev<?)"),
        ("10.0.0.0/8", "SEARCH cert_ips USING PRIMARY KEY (ip>? AND ip<?)"),
        ("sha256:" + "ab" * 32, "SEARCH certificates USING INDEX ix_certificates_tbs_sha256 (tbs_sha256=?)"),
        ("serial:0a", "SEARCH certificates USING INDEX ix_certificates_issuance (issuance>? AND issuance<?)"),
    ],
)
def test_searches_are_index_range_scans(world: World, query: str, plan: str) -> None:
    from ctsentinel.store.search import _matching

    compiled = _matching(parse_query(query)).limit(10).compile(dialect=sqlite.dialect())
    params = compiled.construct_params()
    with sqlite3.connect(world.path) as conn:
        steps = conn.execute(
            "EXPLAIN QUERY PLAN " + str(compiled), tuple(params[k] for k in compiled.positiontup or ())
        ).fetchall()
    details = [str(step[3]) for step in steps]
    assert plan in details
    assert not any(d.startswith("SCAN cert_names") or d.startswith("SCAN cert_ips") for d in details)


def test_names_that_are_not_valid_idna_are_searched_as_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Certificates carry names IDNA refuses (an "_", a label that is not punycode):
    `ctsentinel search` finds them by the form the certificate wrote, as it does any other name."""
    database = tmp_path / "ct.db"
    store = Store.open(str(database))
    ca = make_ca("Lenient CA")
    by = {
        "underscore": issue(ca, ["_dmarc.under_score.example"]),
        "bad-punycode": issue(ca, ["xn--zz.example"]),
    }
    feed = Feed(store, log_info("lenient"))
    for issuance in by.values():
        feed.commit(pair_entries(issuance))
    store.close()
    config = tmp_path / "ctsentinel.toml"
    config.write_text(f'database = "sqlite:///{database}"\n')
    for query, label in [
        ("_dmarc.under_score.example", "underscore"),
        ("under_score.example", "underscore"),
        ("*.under_score.example", "underscore"),
        ("XN--ZZ.example", "bad-punycode"),
    ]:
        assert main(["-c", str(config), "search", query, "--json"]) == 0, query
        found = [record["sha256"] for record in json.loads(capsys.readouterr().out)]
        assert found == [by[label].cert.sha256], query
