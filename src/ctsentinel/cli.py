"""The ctsentinel command line (DESIGN.md section 3): parses the arguments and hands them to the verb's
module in ctsentinel.commands.

Every command takes -c/--config. Errors print one line on stderr and exit non-zero; no traceback reaches the
user. A verb's module is imported only when that verb runs, so that `ctsentinel inspect` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ctsentinel.errors import Error

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_config(p: argparse.ArgumentParser) -> None:
    # Accepted after the subcommand too: `ctsentinel run -c x.toml` works like `ctsentinel -c x.toml run`.
    p.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file (default: ctsentinel.toml)")


def _add_demo(commands: Subparsers) -> None:
    demo = commands.add_parser("demo", help="replay the 1.1.1.1 incident on a local test log")
    _add_config(demo)
    demo.add_argument("--entries", type=int, default=5000, help="size of the test log (default: %(default)s)")
    demo.add_argument("--dir", help="keep the test log in this folder instead of a temporary one")
    demo.add_argument("--serve", action="store_true", help="then serve the web UI until Ctrl-C")
    demo.add_argument("--port", type=int, default=8080, help="the web UI's port (default: %(default)s)")
    demo.set_defaults(verb="demo")


def _add_authorize(commands: Subparsers) -> None:
    authorize = commands.add_parser(
        "authorize", help="record the key hash of a CA (or subscriber key) from a PEM file in a watch"
    )
    _add_config(authorize)
    authorize.add_argument("--watch", required=True, help="the [[watch]] name to edit")
    authorize.add_argument("files", nargs="+", metavar="PEM", help="CA certificate(s) or public key(s)")
    authorize.add_argument(
        "--subscriber-key", action="store_true", help="add to authorized_keys instead of authorized_issuers"
    )
    authorize.add_argument("--dry-run", action="store_true", help="show what would be added")
    authorize.set_defaults(verb="authorize")


def _add_run(commands: Subparsers) -> None:
    run = commands.add_parser("run", help="monitor the logs: verify every entry, store what matters")
    _add_config(run)
    run.add_argument("--once", action="store_true", help="catch every log up to its tree head, then exit")
    run.set_defaults(verb="run")


def _add_logs(commands: Subparsers) -> None:
    logs = commands.add_parser("logs", help="each log: size, verified position, last tree head, errors")
    _add_config(logs)
    logs.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    logs.set_defaults(verb="logs")


def _add_alerts(commands: Subparsers) -> None:
    alerts = commands.add_parser("alerts", help="alerts, newest first")
    _add_config(alerts)
    alerts.add_argument("--json", action="store_true", help="a JSON array of alert objects")
    alerts.set_defaults(verb="alerts")


def _add_search(commands: Subparsers) -> None:
    search = commands.add_parser(
        "search", help="stored certificates by name, IP, CIDR, sha256:, serial:, issuer:"
    )
    _add_config(search)
    search.add_argument("query", help="domain, *.domain, IP, CIDR, sha256:HEX, serial:HEX or issuer:TEXT")
    search.add_argument("--json", action="store_true", help="a JSON array of CertRecords, one per issuance")
    search.add_argument("--limit", type=int, default=100, help="most issuances shown (default: %(default)s)")
    search.set_defaults(verb="search")


def _add_backfill(commands: Subparsers) -> None:
    backfill = commands.add_parser("backfill", help="find what was issued before a watch was added")
    _add_config(backfill)
    backfill.add_argument("--watch", required=True, metavar="NAME", help="the [[watch]] to look back for")
    backfill.add_argument(
        "--all-logs", action="store_true", help="read again logs whose certificates have all expired too"
    )
    backfill.set_defaults(verb="backfill")


def _add_db(commands: Subparsers) -> None:
    db = commands.add_parser("db", help="the database: migrate its schema, or show what it holds")
    _add_config(db)
    db.set_defaults(verb="db")
    db_actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    db_actions.add_parser("migrate", help="bring the schema up to date")
    stats = db_actions.add_parser("stats", help="rows, size, per-log positions, leases and their holders")
    stats.add_argument("--json", action="store_true", help="one JSON object")


def _add_ca(commands: Subparsers) -> None:
    ca = commands.add_parser("ca", help="the root program's view of one CA")
    _add_config(ca)
    ca.set_defaults(verb="ca")
    ca_what = ca.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = ca_what.add_parser(
        "report", help="what the store holds of one CA: issuance, flags, lint, revocation"
    )
    report.add_argument(
        "issuer", metavar="ISSUER", help="sha256:<hex SPKI hash of the CA> or text of its name"
    )
    form = report.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object (the ca report contract)")
    form.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with charts to FILE")


def _add_export(commands: Subparsers) -> None:
    export = commands.add_parser("export", help="lists for distrusting certificates")
    _add_config(export)
    export.set_defaults(verb="export")
    export_what = export.add_subparsers(dest="what", required=True, metavar="WHAT")
    disallow = export_what.add_parser(
        "disallow",
        help="the certificates to distrust",
        description=(
            "The certificates (and precertificates) to distrust: every one of an issuer, of a watch's "
            "alerts, or of chosen alerts. SHA-1 thumbprints (--format sha1) are what Windows' disallowed "
            "certificate store uses; issuer + serial (the csv and json columns) is what revocation lists "
            "such as Mozilla's OneCRL key on; pem gives the certificates themselves."
        ),
    )
    chosen = disallow.add_mutually_exclusive_group(required=True)
    chosen.add_argument(
        "--issuer", metavar="ISSUER", help="sha256:<hex SPKI hash of the CA> or text of its name"
    )
    chosen.add_argument(
        "--watch", metavar="NAME", help="the certificates of a [[watch]]'s or [[ca_watch]]'s alerts"
    )
    chosen.add_argument("--alert", metavar="ID", type=int, nargs="+", help="the certificates of these alerts")
    disallow.add_argument(
        "--format",
        choices=["sha256", "sha1", "csv", "json", "pem"],
        default="sha256",
        help="sha256 or sha1 (one fingerprint a line; sha1: Windows' disallowed store), csv or json "
        "(sha256,sha1,serial,issuer,issuer_spki_sha256,not_before,not_after,precert: issuer + serial for "
        "OneCRL), pem (default: %(default)s)",
    )
    disallow.add_argument(
        "--include-issuer",
        action="store_true",
        help="add the CA certificate whose key verifies the listed certificates (not what the logs claimed)",
    )
    disallow.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")


def _add_serve(commands: Subparsers) -> None:
    serve = commands.add_parser("serve", help="the web UI and JSON API (search, alerts, CAs, logs, metrics)")
    _add_config(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one (default: 8080)")
    serve.set_defaults(verb="serve")


def _add_inspect(commands: Subparsers) -> None:
    inspect = commands.add_parser("inspect", help="check and decode CT data by hand")
    _add_config(inspect)
    what = inspect.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = what.add_parser("sth", help="check a get-sth response's signature")
    p.add_argument("file")
    p.add_argument("--key", required=True, help="the log's public key (PEM)")
    p = what.add_parser("consistency", help="check two get-sth responses and a get-sth-consistency response")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("proof")
    p.add_argument("--key", required=True, help="the log's public key (PEM)")
    p = what.add_parser("inclusion", help="check a get-entry-and-proof response against a tree head")
    p.add_argument("entry_and_proof", help="get-entry-and-proof response, or a get-proof-by-hash response")
    p.add_argument("sth", help="get-sth response")
    p.add_argument("--key", required=True, help="the log's public key (PEM)")
    p.add_argument(
        "--entry", help="with a get-proof-by-hash response: the get-entries response holding the leaf"
    )
    p.add_argument("--index", type=int, help="with a get-entry-and-proof response: the leaf index asked for")
    p = what.add_parser("entries", help="decode a get-entries response into CertRecords")
    p.add_argument("file")
    p = what.add_parser("cert", help="decode a PEM or DER certificate or precertificate")
    p.add_argument("file")
    p.add_argument(
        "--lint",
        action="store_true",
        help='add "lint": pkilint\'s CA/B Forum TLS findings (profile, findings)',
    )
    p = what.add_parser("checkpoint", help="parse and check a static-ct-api checkpoint")
    p.add_argument("file")
    p.add_argument("--key", required=True, help="the log's public key (PEM)")
    p.add_argument("--origin", help="expected origin (default: the checkpoint's first line)")
    p = what.add_parser("tile", help="decode a static-ct-api data tile into CertRecords")
    p.add_argument("file")
    p.add_argument(
        "--hash-tile", help="the level-0 hash tile of the same index: check every entry hashes to it"
    )
    p = what.add_parser("sct", help="check an SCT (raw TLS bytes) or a certificate's embedded SCTs")
    p.add_argument("sct", nargs="?", help="a TLS-encoded SCT file")
    p.add_argument("--cert", required=True, help="the certificate (or precertificate) the SCT is for")
    p.add_argument("--issuer", help="its issuer: makes the SCT a precert_entry SCT")
    p.add_argument("--embedded", action="store_true", help="check the SCTs embedded in --cert")
    p.add_argument("--key", required=True, help="the log's public key (PEM, DER or raw EC point)")
    p = what.add_parser("loglist", help="check that every log_id in a log list is the SHA-256 of its key")
    p.add_argument("file")
    inspect.set_defaults(verb="inspect")


def _add_testlog(commands: Subparsers) -> None:
    testlog = commands.add_parser("testlog", help="a real local CT log for tests and demos")
    _add_config(testlog)
    testlog.set_defaults(verb="testlog")
    tl = testlog.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = tl.add_parser("serve", help="serve a log from DIR on 127.0.0.1")
    serve.add_argument("--dir", required=True)
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    serve.add_argument("--batch-size", type=int, default=256, help="most entries one get-entries returns")
    serve.add_argument("--merge-delay", type=float, default=1.0, help="seconds between tree heads")
    serve.add_argument("--fault", action="append", metavar="NAME[=VALUE]", help="inject a fault (repeatable)")
    populate = tl.add_parser("populate", help="fill a log with realistic generated traffic")
    populate.add_argument("--dir", required=True)
    populate.add_argument("--entries", type=int, default=1000)
    populate.add_argument("--scenario", default=None, help="e.g. fina-1.1.1.1")
    populate.add_argument("--seed", type=int, default=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctsentinel", description="Certificate Transparency monitor")
    parser.add_argument(
        "-c", "--config", default="ctsentinel.toml", help="config file (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_verb in (
        _add_demo,
        _add_authorize,
        _add_run,
        _add_logs,
        _add_alerts,
        _add_search,
        _add_backfill,
        _add_db,
        _add_ca,
        _add_export,
        _add_serve,
        _add_inspect,
        _add_testlog,
    ):
        add_verb(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        module = importlib.import_module(f"ctsentinel.commands.{args.verb}")
        run: Callable[[argparse.Namespace], int] = module.run
        return run(args)
    except Error as exc:
        print(f"ctsentinel: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ctsentinel: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ctsentinel search x | head`): stop quietly, as Unix tools do. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        # A path that cannot be created or read, a port that cannot be bound: the user's to fix, in one line.
        print(f"ctsentinel: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
