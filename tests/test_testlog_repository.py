"""The test log's CA repository over real HTTP on 127.0.0.1: the CRL and OCSP URLs its certificates name,
the CRLs and OCSP answers behind them (verified with ctsentinel.oversight), revocation, and its faults."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ctsentinel.oversight.crl import Crl, crl_urls, verify_crl
from ctsentinel.oversight.ocsp import build_ocsp_request, ocsp_urls, verify_ocsp_response
from ctsentinel.oversight.revocation import (
    RevocationAnswer,
    RevocationError,
    RevocationReason,
    RevocationStatus,
    contradicts,
)
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from testlog_client import request, set_faults
from testlog_populated import LoggedEntry, read_log

FINA_DN = "CN=Fina RDC 2020,O=Financijska agencija,C=HR"
REPORTED_REVOKED_AT = dt.datetime(2025, 9, 3, 18, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[LoggedEntry]]:
    directory = tmp_path_factory.mktemp("repository") / "log"
    populate(directory, entries=400, scenario="fina-1.1.1.1", seed=4)
    return directory, json.loads((directory / "scenario.json").read_text()), read_log(directory)[2]


@pytest.fixture
def served(
    populated: tuple[Path, dict[str, Any], list[LoggedEntry]],
    tmp_path: Path,
    testlog_factory: Callable[..., BackgroundLog],
) -> BackgroundLog:
    """A private copy of the populated log (revocations and faults must not leak between tests)."""
    copy = tmp_path / "log"
    shutil.copytree(populated[0], copy)
    return testlog_factory(copy)


def fetch(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def crl_of(entry: LoggedEntry) -> Crl:
    (url,) = crl_urls(entry.cert)
    status, body = fetch(url)
    assert status == 200, (url, status, body[:200])
    return verify_crl(body, entry.issuer_cert)


def ocsp_of(entry: LoggedEntry, *, nonce: bytes | None = b"n" * 16, get: bool = False) -> RevocationAnswer:
    (url,) = ocsp_urls(entry.cert)
    req = build_ocsp_request(entry.cert.serial_number, entry.issuer_cert, nonce=nonce)
    if get:
        status, body = fetch(url + "/" + urllib.parse.quote(base64.b64encode(req.der).decode(), safe=""))
    else:
        status, body = fetch(url, req.der)
    assert status == 200, (url, status, body[:200])
    return verify_ocsp_response(body, req, entry.issuer_cert, at=now())


def planted(data: dict[str, Any], entries: list[LoggedEntry], label_prefix: str) -> list[LoggedEntry]:
    indexes = {e["index"] for i in data["runs"][0]["issuances"] if i["label"].startswith(label_prefix)
               for e in i["entries"]}
    return [entries[i] for i in sorted(indexes)]


def test_certificates_name_the_repository_recorded_at_populate(
    populated: tuple[Path, dict[str, Any], list[LoggedEntry]], served: BackgroundLog
) -> None:
    directory, data, entries = populated
    repository = data["repository"]
    assert repository.startswith("http://127.0.0.1:") and repository.endswith("/")
    assert json.loads((directory / "cas" / "repository.json").read_text()) == {"url": repository}
    # The log itself is on another (free) port; the repository on the recorded one.
    assert served.repository_url == repository and f":{served.port}/" not in repository
    cas = {c["subject"]: c for c in data["cas"]}
    for entry in entries:
        ca = cas[entry.issuer]
        assert crl_urls(entry.cert) == (ca["crl"],) and ocsp_urls(entry.cert) == (ca["ocsp"],)
        assert ca["crl"] == f"{repository}crl/{ca['id']}.crl" and ca["ocsp"] == f"{repository}ocsp/{ca['id']}"
    # The caIssuers URL serves the issuing CA's certificate.
    access = entries[0].cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    (issuers_url,) = [d.access_location.value for d in access if d.access_method.dotted_string.endswith(".2")]
    assert fetch(issuers_url) == (200, entries[0].chain[0])
    # Intermediates name their root's CRL, which the root signs.
    for entry in (entries[0], planted(data, entries, "fina-")[0]):
        intermediate = entry.issuer_cert
        root = x509.load_der_x509_certificate(entry.chain[-1])
        (url,) = crl_urls(intermediate)
        status, body = fetch(url)
        assert status == 200 and len(verify_crl(body, root)) == 0


def test_fina_certificates_are_revoked_as_fina_revoked_them(
    populated: tuple[Path, dict[str, Any], list[LoggedEntry]], served: BackgroundLog
) -> None:
    _, data, entries = populated
    fina = planted(data, entries, "fina-")
    issuances = [i for i in data["runs"][0]["issuances"] if i["label"].startswith("fina-")]
    assert len(issuances) == 12 and all(i["revocation"] for i in issuances)
    crl = crl_of(fina[0])
    assert crl.issuer == FINA_DN and not crl.is_stale(now())
    assert {f"{entry.serial_number:x}" for entry in crl._list} == {i["serial"].lstrip("0") for i in issuances}
    by_serial = {int(i["serial"], 16): i for i in issuances}
    for entry in fina:
        expected = by_serial[entry.cert.serial_number]["revocation"]
        for answer in (crl.answer(entry.cert.serial_number, now()), ocsp_of(entry)):
            assert answer.status is RevocationStatus.REVOKED
            assert answer.revoked_at is not None
            assert answer.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ") == expected["revoked_at"]
            assert answer.reason is not None and answer.reason.value == expected["reason"]
    reported = [i for i in issuances if i["facts"]["reported"]]
    assert len(reported) == 3
    for issuance in reported:
        assert issuance["revocation"] == {"revoked_at": "2025-09-03T18:00:00Z", "reason": "superseded"}
    older = [i for i in issuances if not i["facts"]["reported"]]
    assert {i["revocation"]["reason"] for i in older} == {RevocationReason.CESSATION_OF_OPERATION.value}


def test_everything_else_is_good(
    populated: tuple[Path, dict[str, Any], list[LoggedEntry]], served: BackgroundLog
) -> None:
    _, data, entries = populated
    revoked = {e.index for e in planted(data, entries, "fina-")}
    crls: dict[str, Crl] = {}
    others = [e for e in entries if e.index not in revoked]
    assert any(e.issuer == FINA_DN for e in others)  # Fina's ordinary traffic
    for entry in others:
        crl = crls.get(entry.issuer) or crls.setdefault(entry.issuer, crl_of(entry))
        assert crl.answer(entry.cert.serial_number, now()).status is RevocationStatus.GOOD
    # OCSP for the authorized CA's certificates and a sample of the rest, by POST and by GET.
    for entry in [*planted(data, entries, "cloudflare-"), *others[:: max(1, len(others) // 15)]]:
        assert ocsp_of(entry).status is RevocationStatus.GOOD
        assert ocsp_of(entry, nonce=None, get=True).status is RevocationStatus.GOOD


def test_revoking_through_the_admin_endpoint(
    populated: tuple[Path, dict[str, Any], list[LoggedEntry]], served: BackgroundLog
) -> None:
    _, data, entries = populated
    cloudflare = planted(data, entries, "cloudflare-")[0]
    assert ocsp_of(cloudflare).status is RevocationStatus.GOOD
    ca_id = next(c["id"] for c in data["cas"] if c["subject"] == cloudflare.issuer)
    serial = f"{cloudflare.cert.serial_number:x}"
    reply = request(served.url + "admin/revoke",
                    {"ca": ca_id, "serial": serial, "reason": "keyCompromise"})
    assert reply.status == 200, reply.body
    last = reply.json()["revoked"][-1]
    assert (last["ca"], int(last["serial"], 16), last["reason"]) == (ca_id, int(serial, 16), "keyCompromise")
    for answer in (crl_of(cloudflare).answer(cloudflare.cert.serial_number, now()), ocsp_of(cloudflare)):
        assert (answer.status, answer.reason) == (RevocationStatus.REVOKED, RevocationReason.KEY_COMPROMISE)
    # Revoked in the future: in force only from then on.
    later = planted(data, entries, "cloudflare-")[-1]
    reply = request(served.url + "admin/revoke", [{"ca": ca_id, "serial": f"{later.cert.serial_number:x}",
                                                  "revoked_at": "2099-01-01T00:00:00Z"}])
    assert reply.status == 200
    assert ocsp_of(later).status is RevocationStatus.GOOD
    assert request(served.url + "admin/revoke").json()["revoked"][-1]["revoked_at"] == "2099-01-01T00:00:00Z"
    for body, message in [
        ({"ca": "nope", "serial": "01"}, "unknown CA"),
        ({"ca": ca_id, "serial": "xyz"}, "not positive hex"),
        ({"ca": ca_id, "serial": "01", "reason": "because"}, "is not one of"),
        ({"ca": ca_id, "serial": "01", "revoked_at": "yesterday"}, "not an RFC 3339 time"),
        ({"ca": ca_id, "serial": "01", "when": "now"}, "unknown keys"),
    ]:
        reply = request(served.url + "admin/revoke", body)
        assert reply.status == 400 and message in reply.json()["error"], reply.body


def test_repository_faults(
    populated: tuple[Path, dict[str, Any], list[LoggedEntry]], served: BackgroundLog
) -> None:
    _, data, entries = populated
    fina = planted(data, entries, "fina-")[0]
    good = next(e for e in entries if e.issuer == FINA_DN and e.index not in
                {p.index for p in planted(data, entries, "fina-")})
    (crl_url,), (ocsp_url,) = crl_urls(fina.cert), ocsp_urls(fina.cert)

    set_faults(served.url, {"crl-unavailable": None})
    assert fetch(crl_url)[0] == 503 and ocsp_of(fina).status is RevocationStatus.REVOKED
    set_faults(served.url, {"ocsp-unavailable": None}, ["crl-unavailable"])
    assert fetch(ocsp_url, b"x")[0] == 503 and crl_of(fina).answer(1, now()).status is RevocationStatus.GOOD
    set_faults(served.url, {"repository-refused": None}, ["ocsp-unavailable"])
    for url in (crl_url, ocsp_url):
        with pytest.raises(urllib.error.URLError) as caught:
            fetch(url)
        assert isinstance(caught.value.reason, ConnectionRefusedError)
    assert request(served.url + "ct/v1/get-sth").status == 200  # the log itself is untouched
    set_faults(served.url, {"stale-crl": None}, ["repository-refused"])
    crl = crl_of(fina)
    assert crl.is_stale(now()) and crl.next_update is not None
    assert crl.next_update < now() - dt.timedelta(hours=23)
    assert crl.answer(fina.cert.serial_number, now()).status is RevocationStatus.REVOKED
    stale_good = crl.answer(good.cert.serial_number, now())
    assert (stale_good.status, stale_good.stale) == (RevocationStatus.UNKNOWN, True)
    set_faults(served.url, {"ocsp-lies": None}, ["stale-crl"])
    lie = ocsp_of(fina)
    truth = crl_of(fina).answer(fina.cert.serial_number, now())
    assert lie.status is RevocationStatus.GOOD and contradicts(truth, lie)
    set_faults(served.url, {"ocsp-unknown": None}, ["ocsp-lies"])
    assert ocsp_of(good).status is RevocationStatus.UNKNOWN
    assert ocsp_of(fina).status is RevocationStatus.REVOKED
    set_faults(served.url, {}, ["ocsp-unknown"])
    assert ocsp_of(good).status is RevocationStatus.GOOD


def test_ocsp_for_another_ca_or_garbage(
    populated: tuple[Path, dict[str, Any], list[LoggedEntry]], served: BackgroundLog
) -> None:
    _, data, entries = populated
    fina = planted(data, entries, "fina-")[0]
    cloudflare = planted(data, entries, "cloudflare-")[0]
    (fina_ocsp,) = ocsp_urls(fina.cert)
    # Asking Fina's responder about another CA's certificate: not its to answer.
    req = build_ocsp_request(cloudflare.cert.serial_number, cloudflare.issuer_cert)
    status, body = fetch(fina_ocsp, req.der)
    assert status == 200
    with pytest.raises(RevocationError, match="OCSP responder answered unauthorized"):
        verify_ocsp_response(body, req, cloudflare.issuer_cert, at=now())
    status, body = fetch(fina_ocsp, b"not a request")
    with pytest.raises(RevocationError, match="malformed_request"):
        verify_ocsp_response(body, req, cloudflare.issuer_cert, at=now())
    assert fetch(data["repository"] + "crl/no-such-ca.crl")[0] == 404


def test_a_second_copy_served_at_once_goes_without_the_repository(
    populated: tuple[Path, dict[str, Any], list[LoggedEntry]], served: BackgroundLog, tmp_path: Path,
    testlog_factory: Callable[..., BackgroundLog],
) -> None:
    # Both copies name the same recorded port; the first holds it, the second still serves the log.
    second_dir = tmp_path / "second"
    shutil.copytree(populated[0], second_dir)
    second = testlog_factory(second_dir)
    assert second.repository_url is None and served.repository_url is not None
    assert request(second.url + "ct/v1/get-sth").status == 200
    assert request(second.url + "admin/revoke").status == 404
    # A log that never had CAs has no repository either.
    assert testlog_factory().repository_url is None
