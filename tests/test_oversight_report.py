"""`ca report` and `export disallow` over what `run --once` stored of the fina-1.1.1.1 log served on
127.0.0.1 with a [[ca_watch]] on Fina: the JSON contract, the HTML page, and every export format parsed
back and compared with the log as read back independently."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ctsentinel.cli import main
from ctsentinel.testlog.server import BackgroundLog
from oversight_world import FINA_DN, World, expected_flags, fina_watch, populated_log, serve_copy

REPORT_KEYS = ["issuer", "issuer_spki_sha256", "issuances", "by_month", "identifiers", "findings", "lint",
               "revocation"]  # fmt: skip
CSV_COLUMNS = [
    "sha256",
    "sha1",
    "serial",
    "issuer",
    "issuer_spki_sha256",
    "not_before",
    "not_after",
    "precert",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("report")
    populated_log(base / "source")
    started: list[BackgroundLog] = []

    def factory(directory: Path, **kwargs: Any) -> BackgroundLog:
        log = BackgroundLog(directory, merge_delay=0.05, **kwargs)
        started.append(log.start())
        return log

    ca_watch = fina_watch(base / "source")
    made = serve_copy(base / "source", base / "work", factory, ca_watch)
    assert made.run_once() == 0
    yield made
    for log in started:
        log.stop()


def cli(capsys: pytest.CaptureFixture[str], world: World, *args: str) -> tuple[int, str, str]:
    code = main(["-c", str(world.config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def fina_entries(world: World) -> list[Any]:
    return [e for e in world.entries if e.issuer == FINA_DN]


def test_the_report_counts_issuances_flags_lint_and_revocation(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, world, "ca", "report", f"sha256:{world.fina_spki}", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert list(report) == REPORT_KEYS
    fina = fina_entries(world)
    issuances: dict[str, Any] = {}
    for entry in fina:
        issuances.setdefault(entry.serial_hex, entry)
    months: dict[str, int] = {}
    for entry in issuances.values():
        month = entry.cert.not_valid_before_utc.strftime("%Y-%m")
        months[month] = months.get(month, 0) + 1
    flagged = {s: expected_flags(e) for s, e in issuances.items() if expected_flags(e)}
    assert report["issuer"] == FINA_DN and report["issuer_spki_sha256"] == world.fina_spki
    assert report["issuances"] == len(issuances) and report["by_month"] == dict(sorted(months.items()))
    assert report["identifiers"] == {
        "dns": sum(1 for e in issuances.values() if e.dns_names),
        "ip": sum(1 for e in issuances.values() if e.ips),
    }
    assert report["findings"] == {
        "ip_address": sum("ip_address" in f for f in flagged.values()),
        "reserved_ip": sum("reserved_ip" in f for f in flagged.values()),
        "internal_name": sum("internal_name" in f for f in flagged.values()),
        "long_validity": 0,
        "lint_error": sum("reserved_ip" in f or "internal_name" in f for f in flagged.values()),
    }
    # Every Fina certificate was linted (the watch names the CA): all carry the URL-host finding, which the
    # watch ignores but the report still counts (it is a true finding about the certificate).
    assert report["lint"]["cabf.internal_domain_name"] == len(issuances)
    assert report["lint"]["cabf.internal_ip_address"] == report["findings"]["reserved_ip"]
    planted = {i["serial"] for i in world.scenario["runs"][0]["issuances"] if i["label"].startswith("fina-")}
    assert report["revocation"] == {
        "revoked": len(planted),
        "good": len(flagged) - len(planted),  # the alerted ones were checked; ordinary ones are not revoked
        "unknown": 0,
        "unchecked": len(issuances) - len(flagged),
    }
    # By name too; a name that no stored certificate's issuer has is one line.
    code, out, _ = cli(capsys, world, "ca", "report", "fina rdc")
    assert code == 0 and FINA_DN in out and f"flagged: {len(flagged)}" in out
    code, _, err = cli(capsys, world, "ca", "report", "Example")
    assert (code, err) == (
        1,
        "ctsentinel: no stored certificate has an issuer whose name contains 'Example'\n",
    )


def test_the_html_report_is_self_contained(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = tmp_path / "fina.html"
    code, out, _ = cli(capsys, world, "ca", "report", "Fina RDC", "--html", str(page))
    assert code == 0 and str(page) in out
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 3
    for outside in ("<script", "src=", "href=", "@import", "url("):
        assert outside not in html
    assert "issuances" in html and "flagged" in html and "revoked" in html


def _fingerprints(entries: list[Any]) -> set[str]:
    return {hashlib.sha256(e.der).hexdigest() for e in entries}


def test_export_lists_exactly_the_fina_issuances_in_every_format(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    fina = fina_entries(world)
    expected = _fingerprints(fina)
    fina_ca = next(c for c in world.scenario["cas"] if c["id"] == "fina-rdc-2020")
    base = ["export", "disallow", "--issuer", f"sha256:{world.fina_spki}"]
    outputs = {}
    for form in ("sha256", "sha1", "csv", "json", "pem"):
        code, out, err = cli(capsys, world, *base, "--format", form)
        assert (code, err) == (0, "")
        outputs[form] = out
    assert set(outputs["sha256"].split()) == expected and len(outputs["sha256"].split()) == len(expected)
    assert set(outputs["sha1"].split()) == {hashlib.sha1(e.der).hexdigest() for e in fina}
    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    assert list(rows[0]) == CSV_COLUMNS and {r["sha256"] for r in rows} == expected
    serials = {(r["serial"], r["issuer_spki_sha256"]) for r in rows}
    assert serials == {(e.serial_hex, world.fina_spki) for e in fina}
    assert {r["precert"] for r in rows} == {"true", "false"}
    items = json.loads(outputs["json"])
    assert [list(i) for i in items] == [CSV_COLUMNS] * len(items) and {i["sha256"] for i in items} == expected
    pems = x509.load_pem_x509_certificates(outputs["pem"].encode())
    assert {hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in pems} == expected
    # --include-issuer adds Fina RDC 2020's certificate: its key verifies them.
    code, out, err = cli(capsys, world, *base, "--include-issuer")
    assert (code, err) == (0, "") and set(out.split()) == expected | {fina_ca["cert_sha256"]}
    # A watch's alerts, and chosen alerts.
    with world.store() as store:
        alerts = [a for a in store.list_alerts() if a.watch == "fina"]
    flagged = {f"{a.serial}" for a in alerts}
    code, out, _ = cli(capsys, world, "export", "disallow", "--watch", "fina", "--format", "csv")
    assert code == 0 and {r["serial"] for r in csv.DictReader(io.StringIO(out))} == flagged
    chosen = sorted(a.id for a in alerts)[:2]
    code, out, _ = cli(capsys, world, "export", "disallow", "--alert", *map(str, chosen), "--format", "json")
    assert code == 0 and {i["serial"] for i in json.loads(out)} == {
        a.serial for a in alerts if a.id in chosen
    }
    code, _, err = cli(capsys, world, "export", "disallow", "--alert", "99999")
    assert code == 1 and err.strip() == "ctsentinel: no alert #99999"


def test_inspect_cert_lint(world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    entry = next(e for e in fina_entries(world) if "rdctest" in e.dns_names)
    path = tmp_path / "rdctest.der"
    path.write_bytes(entry.der)
    code, out, _ = cli(capsys, world, "inspect", "cert", str(path), "--lint")
    found = json.loads(out)
    assert code == 0 and list(found)[-1] == "lint" and found["lint"]["profile"].startswith("ov-")
    sans = [f for f in found["lint"]["findings"] if f["where"].endswith("dNSName")]
    assert {(f["severity"], f["code"]) for f in sans} == {("error", "cabf.internal_domain_name")}
