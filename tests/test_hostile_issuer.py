"""A log cannot hide an unauthorized final certificate behind a forged chain.

RFC 6962 extra_data and static-ct issuer fingerprints are not covered by the Merkle tree: the log can put
any certificate first. The issuer of a final certificate is the key whose signature verifies it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ctsentinel import cli
from ctsentinel.store import Store
from ctsentinel.store.search import parse_query
from ctsentinel.testlog.server import BackgroundLog
from hostile_helpers import alerts, database_of, one_api_list, run_once, wait_for_size, write_config
from testlog_client import set_faults, submit
from testlog_pki import Issuer, make_leaf, make_pki


def key_hash(issuer: Issuer) -> str:
    spki = issuer.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


@pytest.mark.parametrize("kind", ["rfc6962", "static-ct"])
def test_a_forged_chain_hides_no_alert(
    kind: str, tmp_path: Path, testlog_factory: Callable[..., BackgroundLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    own, rogue = make_pki("Own"), make_pki("Rogue")
    log = testlog_factory()
    # Entry 0 comes from the authorized CA: its issuer is what forged-chain puts first in every chain.
    submit(log.url, own.chain(make_leaf(own.intermediate, ["www.own.example"], ["1.1.1.1"])))
    for n in range(3):
        submit(log.url, rogue.chain(make_leaf(rogue.intermediate, [f"r{n}.example"], ["1.1.1.1"])))
    wait_for_size(log, 4)
    set_faults(log.url, {"forged-chain": 0})
    watch = (
        '[[watch]]\nname = "dns"\nips = ["1.1.1.1"]\n'
        f'authorized_issuers = ["sha256:{key_hash(own.intermediate)}"]\n'
    )
    config = write_config(tmp_path, one_api_list(log, kind), extra=watch)
    code, _, err = run_once(capsys, config)
    assert (code, err) == (0, "")
    found = alerts(capsys, config)
    assert sorted(a["dns_names"][0] for a in found) == ["r0.example", "r1.example", "r2.example"]
    assert {(a["reason"], a["severity"]) for a in found} == {("unauthorized_issuer", "critical")}
    # The issuer reported is the key that signed, not the certificate the log put first.
    assert {a["issuer_spki_sha256"] for a in found} == {key_hash(rogue.intermediate)}


def test_a_chain_that_verifies_nothing_leaves_the_issuer_unknown_and_unauthorized(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str],
) -> None:
    own, rogue = make_pki("Own"), make_pki("Rogue")
    log = testlog_factory()
    # The rogue leaf is logged with the authorized CA's chain only: no certificate the log sends signed it.
    submit(log.url, own.chain(make_leaf(own.intermediate, ["www.own.example"])))
    leaf = make_leaf(rogue.intermediate, ["one.one.one.one"])
    submit(log.url, [leaf, own.intermediate.der, own.root.der])
    wait_for_size(log, 2)
    watch = (
        '[[watch]]\nname = "dns"\ndomains = ["one.one.one.one", "own.example"]\n'
        f'authorized_issuers = ["sha256:{key_hash(own.intermediate)}", "ctsentinel tests"]\n'
    )
    config = write_config(tmp_path, one_api_list(log, "rfc6962"), extra=watch)
    code, _, err = run_once(capsys, config)
    assert (code, err) == (0, "")
    (alert,) = alerts(capsys, config)
    assert alert["dns_names"] == ["one.one.one.one"]
    assert (alert["reason"], alert["severity"]) == ("unauthorized_issuer", "critical")
    # Unknown, even though the certificate names an authorized organization as its issuer.
    assert alert["issuer_spki_sha256"] is None
    # Its own issuance, since no issuer is known: still found by its serial, in the CLI and in the web UI's
    # browse queries.
    assert cli.main(["-c", str(config), "search", f"serial:{alert['serial']}", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["dns_names"] == ["one.one.one.one"] and record["serial"] == alert["serial"]
    store = Store.open_for_browsing(f"sqlite:///{database_of(config)}", time_limit=5.0)
    try:
        page = store.browse.search(parse_query(f"serial:{alert['serial']}"), limit=10)
    finally:
        store.close()
    assert [issuance.found.record.serial for issuance in page.items] == [alert["serial"]]
