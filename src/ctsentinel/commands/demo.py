"""`ctsentinel demo`: the 1.1.1.1 incident replayed end to end on a local test log.

1. A test log is filled with the `fina-1.1.1.1` scenario: ordinary traffic with Fina RDC 2020's
   precertificates for 1.1.1.1 and the legitimate certificates of Cloudflare's own CA among it.
2. It is served on 127.0.0.1 (both APIs) and a config watches 1.1.1.1, 1.0.0.1, 2606:4700:4700::/48 and
   cloudflare-dns.com with the legitimate CA authorized — what Cloudflare's monitoring lacked.
3. `run --once` reads the log the way the monitor always does: every tree head's signature checked, every
   entry hashed into the compact range and proven against a signed root, decoded and matched.
4. The alerts: one per issuance, the authorized certificates for the same names stored but not alerted.
5. Live: the monitor keeps running while Fina issues one more precertificate for 1.1.1.1; the demo measures
   how long after that entry reaches a tree head the alert is stored.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ctsentinel.commands.alerts import print_alerts
from ctsentinel.commands.run import catch_up, problem_lines
from ctsentinel.config import load_config
from ctsentinel.errors import UserError
from ctsentinel.store import Store

SCENARIO = "fina-1.1.1.1"
WATCH = "cloudflare-dns"
LIVE_TIMEOUT = 60.0


@contextmanager
def _child(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextmanager
def _served_log(directory: Path) -> Iterator[str]:
    """Runs `ctsentinel testlog serve` in a child process and yields its base URL."""
    command = [sys.executable, "-m", "ctsentinel", "testlog", "serve", "--dir", str(directory), "--port", "0",
               "--merge-delay", "0.5"]  # fmt: skip
    with _child(command) as child:
        assert child.stdout is not None and child.stderr is not None
        line = child.stdout.readline()
        if not line.startswith("testlog: serving "):
            raise UserError(
                f"the test log did not start: {(line + child.stderr.read()).strip() or 'no output'}"
            )
        yield line.split()[2]


def _write_config(base: Path, log_dir: Path, watch: dict[str, Any]) -> Path:
    def toml_list(values: list[str]) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"

    path = base / "ctsentinel.toml"
    path.write_text(
        f"""# Written by `ctsentinel demo`.
database = "sqlite:///{base / "ctsentinel.db"}"

[logs]
list = {json.dumps(str(log_dir / "log_list.json"))}
start = "beginning"
poll_interval = 0.5
requests_per_second = 1000   # a local log: no need to be gentle

[[watch]]
name = {json.dumps(WATCH)}
domains = {toml_list(watch["domains"])}
ips = {toml_list(watch["ips"])}
authorized_issuers = {toml_list(watch["authorized_issuers"])}

[[notify]]
kind = "jsonl"
path = {json.dumps(str(base / "alerts.jsonl"))}
""",
        encoding="utf-8",
    )
    return path


def _catch_up(config_path: Path) -> float:
    config = load_config(config_path)
    started = time.monotonic()
    report = catch_up(config)
    elapsed = time.monotonic() - started
    if report.exit_code() != 0:
        problems = "; ".join(problem_lines(report)) or "the run did not finish"
        raise UserError(f"the monitor did not verify the test log: {problems}")
    return elapsed


def _authorized_issuances(store: Store, watch: dict[str, Any]) -> int:
    authorized = {h.removeprefix("sha256:") for h in watch["authorized_issuers"]}
    seen = set()
    for query in [*watch["domains"], *watch["ips"]]:
        for result in store.search(query, limit=1000):
            if result.record.issuer_spki_sha256 in authorized:
                seen.add((result.record.issuer_spki_sha256, result.record.serial))
    return len(seen)


def _issue_fina_precertificate(log_dir: Path) -> tuple[list[bytes], int]:
    """A new precertificate for 1.1.1.1 from the scenario's Fina RDC 2020, with its chain, and its serial."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from ctsentinel.testlog.ca import CAHierarchy

    hierarchy = CAHierarchy.load_or_create(log_dir, seed=1)
    fina = hierarchy["fina-rdc-2020"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    serial = x509.random_serial_number()
    precert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test13.hr")]))
        .issuer_name(fina.cert.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("test13.hr"), x509.IPAddress(ipaddress.ip_address("1.1.1.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.PrecertPoison(), critical=True)
        .sign(fina.key, hashes.SHA256())
    )
    der = precert.public_bytes(serialization.Encoding.DER)
    return [der, *hierarchy.chain("fina-rdc-2020")], serial


def _post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _tree_size(base_url: str) -> int:
    with urllib.request.urlopen(base_url + "ct/v1/get-sth", timeout=30) as response:
        return int(json.load(response)["tree_size"])


def _live(log_dir: Path, base_url: str, config_path: Path) -> None:
    command = [sys.executable, "-m", "ctsentinel", "-c", str(config_path), "run"]
    with _child(command):
        chain, serial = _issue_fina_precertificate(log_dir)
        size_before = _tree_size(base_url)
        _post_json(base_url + "ct/v1/add-pre-chain", {"chain": [base64.b64encode(c).decode() for c in chain]})
        submitted = time.monotonic()
        in_head = None
        store = Store.open(load_config(config_path).database)
        try:
            while time.monotonic() - submitted < LIVE_TIMEOUT:
                if in_head is None and _tree_size(base_url) > size_before:
                    in_head = time.monotonic()
                hits = [a.to_json() for a in store.list_alerts(limit=5) if int(str(a.serial), 16) == serial]
                if hits:
                    alerted = time.monotonic()
                    in_head = in_head or alerted
                    alert = hits[0]
                    print(
                        f"   alert #{alert['id']} ({alert['reason']}, {alert['severity']}) for serial "
                        f"{alert['serial']}: {alerted - in_head:.1f} s after the entry reached a tree head, "
                        f"{alerted - submitted:.1f} s after it was submitted"
                    )
                    return
                time.sleep(0.1)
        finally:
            store.close()
    raise UserError(f"no alert for the live precertificate within {LIVE_TIMEOUT:.0f} s")


def run(args: argparse.Namespace) -> int:
    # The demo's folder is kept (a new temporary one unless --dir), so that its store can be browsed after.
    base = Path(args.dir or tempfile.mkdtemp(prefix="ctsentinel-demo-")).resolve()
    base.mkdir(parents=True, exist_ok=True)
    log_dir = base / "log"
    watch = _build_log(log_dir, args.entries)
    with _served_log(log_dir) as base_url:
        config_path = _write_config(base, log_dir, watch)
        print(
            f"2. Serving it at {base_url}; {config_path} watches {', '.join(watch['domains'] + watch['ips'])}"
        )
        print(f"   authorized: {', '.join(watch['authorized_issuers'])} (the legitimate CA's key)")
        alerts = _verify_and_show(config_path, watch)
        print(
            "5. Live: the monitor keeps running; Fina RDC 2020 logs one more precertificate for 1.1.1.1 ..."
        )
        _live(log_dir, base_url, config_path)
        _root_program(base, log_dir)
    print(_delivered(base / "alerts.jsonl"))
    page = f"http://127.0.0.1:{args.port}/watches/{WATCH}"
    print(f"7. In a browser: ctsentinel -c {base / 'ctsentinel.toml'} serve --port {args.port}")
    print(f"   then open {page} (the Fina issuances stand out as an unauthorized issuer)")
    if args.serve:
        _serve(base / "ctsentinel.toml", args.port)
    return 0 if alerts else 1


def _root_program(base: Path, log_dir: Path) -> None:
    """Step 6: the root program's view of the same log: a [[ca_watch]] on Fina RDC 2020, its flagged
    issuances, lint and revocation, and its CA report."""
    from ctsentinel.commands.ca import print_report
    from ctsentinel.oversight.report import ca_report
    from ctsentinel.oversight.report_html import render

    scenario = json.loads((log_dir / "scenario.json").read_text())
    fina = next(c for c in scenario["cas"] if c["id"] == "fina-rdc-2020")
    folder = base / "root-program"
    folder.mkdir(exist_ok=True)
    config_path = folder / "ctsentinel.toml"
    config_path.write_text(
        f"""# Written by `ctsentinel demo`: the root program that trusts Fina watches what it issues.
database = "sqlite:///{folder / "ctsentinel.db"}"

[logs]
list = {json.dumps(str(log_dir / "log_list.json"))}
start = "beginning"
requests_per_second = 1000

[[ca_watch]]
name = "fina"
issuers = ["sha256:{fina["spki_sha256"]}"]   # {fina["subject"]}
# The test log's CRL and OCSP URLs name 127.0.0.1, an internal name to the linter: not counted there.
ignore_lint = ["cabf.internal_domain_name@uniformResourceIdentifier"]

[[notify]]
kind = "jsonl"
path = {json.dumps(str(folder / "alerts.jsonl"))}
""",
        encoding="utf-8",
    )
    print(f"6. The root program's view: {config_path} has a [[ca_watch]] on {fina['subject']}")
    print("   every flag: IP addresses, reserved addresses, internal names, over 398 days, lint errors")
    elapsed = _catch_up(config_path)
    store = Store.open(load_config(config_path).database)
    try:
        report = ca_report(store, f"sha256:{fina['spki_sha256']}")
    finally:
        store.close()
    print(f"   run --once in {elapsed:.1f} s: every Fina certificate stored and linted, flagged ones checked")
    print_report(report, indent="   ")
    page = folder / "fina-report.html"
    page.write_text(render(report, generated=dt.datetime.now(dt.UTC)), encoding="utf-8")
    print(f"   the CA report: {page}")
    key = f"sha256:{fina['spki_sha256']}"
    print(f"   the disallow list: ctsentinel -c {config_path} export disallow --issuer {key} --format csv")


def _delivered(path: Path) -> str:
    """What reached the jsonl channel: the alerts, and the news that their CA revoked them."""
    events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    news = sum(1 for event in events if event.get("event") == "revocation")
    also = f" (and {news} revocation event(s): their CA revoked them)" if news else ""
    return f"   {len(events) - news} alert(s) were delivered to the jsonl channel {path}{also}"


def _serve(config_path: Path, port: int) -> None:
    """`demo --serve`: the web UI over the demo's store until Ctrl-C."""
    import asyncio

    from ctsentinel.commands.serve import serve

    def announce(url: str) -> None:
        print(f"   serving {url} — Ctrl-C stops", flush=True)

    asyncio.run(serve(load_config(config_path), "127.0.0.1", port, announce=announce))


def _build_log(log_dir: Path, entries: int) -> dict[str, Any]:
    """Step 1: the scenario's test log; returns the scenario's watch for Cloudflare's DNS resolver."""
    from ctsentinel.testlog.populate import populate

    print(f"1. Building a test log with the {SCENARIO} scenario ({entries:,} entries) in {log_dir} ...")
    report = populate(log_dir, entries=entries, scenario=SCENARIO, seed=1)
    print("   " + report.summary().replace("\n", "\n   "))
    scenario = json.loads((log_dir / "scenario.json").read_text())
    (watch,) = [w for w in scenario["watches"] if w["name"] == WATCH]
    return dict(watch)


def _verify_and_show(config_path: Path, watch: dict[str, Any]) -> list[dict[str, Any]]:
    """Steps 3 and 4: run --once over the log, then the alerts it stored; returns them."""
    print("3. ctsentinel run --once: every tree head checked, every entry proven against it ...")
    elapsed = _catch_up(config_path)
    store = Store.open(load_config(config_path).database)
    try:
        verified = max((s.position or 0) for s in store.log_states())
        print(f"   {verified:,} entries verified, decoded and matched in {elapsed:.1f} s")
        alerts = [alert.to_json() for alert in store.list_alerts()]
        print(
            f"4. {len(alerts)} alert(s): certificates for watched names or addresses "
            "by a CA nobody authorized"
        )
        print_alerts(alerts, indent="   ")
        print(
            f"   {_authorized_issuances(store, watch)} issuance(s) by the authorized CA matched too: "
            "stored and searchable, not alerted."
        )
    finally:
        store.close()
    return alerts
