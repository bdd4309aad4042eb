"""Names PostgreSQL cannot index as they are must not block a log: a NUL in a dNSName (text columns refuse
NUL) and a name longer than a btree index entry may be (about 2,700 bytes), logged by a real test log and
read by `run --once` into a real throwaway cluster. Every entry is stored and the log reaches its head;
the names stay searchable by the domains they are under."""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import pg_cluster
from ctsentinel.certs.der import elements, wrap
from ctsentinel.cli import main
from ctsentinel.testlog.server import BackgroundLog
from testlog_client import get_json, submit
from testlog_pki import Pki, make_leaf, make_pki

pytestmark = pytest.mark.skipif(pg_cluster.available() is not None, reason=str(pg_cluster.available()))

NUL_NAME = "nul\x00.evil.example.com"
# Random letters: PostgreSQL compresses index entries, and a repetitive name would fit compressed.
_RANDOM = random.Random(2704)
LONG_NAME = ".".join("".join(_RANDOM.choices(string.ascii_lowercase, k=60)) for _ in range(80))
LONG_NAME += ".long.example.com"  # 4,896 characters
SERIAL = bytes([0x5A]) + _RANDOM.randbytes(1499)  # its issuance key (hex) is beyond the index limit too


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with pg_cluster.cluster() as url:
        yield url


def _long_serial_leaf(pki: Pki, dns: list[str]) -> bytes:
    """A leaf whose serial number is SERIAL (cryptography refuses to build one that long), signed by the
    issuing CA over the edited TBS."""
    der = make_leaf(pki.intermediate, dns)
    ((_, _, cert_body, cert_end),) = elements(der, 0, len(der))
    (_, _, tbs_body, tbs_end), (_, algorithm, _, algorithm_end), _ = elements(der, cert_body, cert_end)
    fields = list(elements(der, tbs_body, tbs_end))
    serial = 1 if fields[0][0] == 0xA0 else 0  # after the optional [0] version
    parts = [der[offset:end] for _, offset, _, end in fields]
    parts[serial] = wrap(0x02, SERIAL)
    tbs = wrap(0x30, b"".join(parts))
    signature = pki.intermediate.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return wrap(0x30, tbs + der[algorithm:algorithm_end] + wrap(0x03, b"\x00" + signature))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_hostile_names_do_not_block_the_log_on_postgresql(
    postgres: str,
    tmp_path: Path,
    testlog_factory: Callable[..., BackgroundLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = testlog_factory()
    pki = make_pki("Hostile Names")
    leaves = [
        make_leaf(pki.intermediate, [NUL_NAME, "first.example.com"]),
        make_leaf(pki.intermediate, ["holder.example.net", LONG_NAME]),  # the CN is the first
        _long_serial_leaf(pki, ["serial.example.com"]),
        make_leaf(pki.intermediate, ["after.example.com"]),
    ]
    for leaf in leaves:
        submit(log.url, pki.chain(leaf))
    deadline = time.monotonic() + 10
    while get_json(log.url + "ct/v1/get-sth")["tree_size"] < len(leaves):
        assert time.monotonic() < deadline, "the test log did not integrate the submissions"
        time.sleep(0.05)

    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "{postgres}"\n'
        f'[logs]\nlist = "{log.directory / "log_list.json"}"\nstart = "beginning"\n'
        '[monitor]\nstore = "all"\n'
        '[[watch]]\nname = "example"\ndomains = ["example.com"]\n'
    )
    c = str(config)
    code, _, err = _run(capsys, "-c", c, "run", "--once")
    assert code == 0, err
    code, out, _ = _run(capsys, "-c", c, "logs", "--json")
    (state,) = json.loads(out)
    assert (state["position"], state["errors"]) == (len(leaves), 0), state

    def found(query: str) -> list[list[str]]:
        code, out, err = _run(capsys, "-c", c, "search", query, "--json")
        assert code == 0, err
        return [record["dns_names"] for record in json.loads(out)]

    # The full names come back exactly as the certificates wrote them.
    assert found("first.example.com") == [[NUL_NAME, "first.example.com"]]
    assert [NUL_NAME, "first.example.com"] in found("evil.example.com")
    assert found("long.example.com") == [["holder.example.net", LONG_NAME]]
    assert found(".".join(LONG_NAME.split(".")[-6:])) == [["holder.example.net", LONG_NAME]]
    assert found(LONG_NAME) == [["holder.example.net", LONG_NAME]]
    (long_serial,) = found("serial.example.com")
    assert long_serial == ["serial.example.com"]
    code, out, _ = _run(capsys, "-c", c, "search", "serial:" + SERIAL.hex(), "--json")
    assert [record["dns_names"] for record in json.loads(out)] == [["serial.example.com"]]
    assert found("after.example.com") == [["after.example.com"]]
    code, out, _ = _run(capsys, "-c", c, "alerts", "--json")
    # A name over 253 octets is no DNS name: the certificate is stored and flagged, and matches no watch.
    assert sorted(a["dns_names"][0] for a in json.loads(out)) == [
        "after.example.com", NUL_NAME, "serial.example.com"
    ]
    code, out, _ = _run(capsys, "-c", c, "search", "holder.example.net", "--json")
    (long_name,) = json.loads(out)
    assert "4896 octets, over 253: not a DNS name, not matched" in long_name["error"]
