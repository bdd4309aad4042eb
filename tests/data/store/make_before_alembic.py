"""How before-alembic-v2.sqlite was made: run with the code of ctsentinel commit 558836e (the last schema
written by the hand-made migrations, schema_version 2), from that commit's checkout:

    .venv/bin/python tests/data/store/make_before_alembic.py OUT.sqlite

One log with two tree heads, an error and a misbehaviour record; a batch of two issuances (each a
precertificate and its certificate) and three entries that do not matter; one of them alerts, with its
delivery and a log-health delivery pending in the outbox. The file is then vacuumed to 4 KiB pages and
out of WAL mode, to keep it small.
"""

import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))  # tests/: the store_certs helpers of that commit
from ctsentinel.ct.misbehaviour import MisbehaviourKind
from ctsentinel.store import Store
from ctsentinel.watch import Finding
from ctsentinel.watch.severity import Severity
from store_certs import Feed, issue, log_info, make_ca, pair_entries


class Route:
    key = "webhook#1"

    def accepts(self, severity: Severity, watch: str | None) -> bool:
        return True


class Health:
    kind = "log_health"
    severity = Severity.CRITICAL

    def to_json(self) -> dict[str, str]:
        return {
            "event": "log_health",
            "log": "https://legacy.example/",
            "problem": "misbehaving",
            "detail": "fork: two roots at size 3",
            "severity": "critical",
            "time": "2026-01-02T03:04:05Z",
        }


out = Path(sys.argv[1])
store = Store.open(f"sqlite:///{out}")
info = log_info("legacy")
feed = Feed(store, info)
ca = make_ca("Legacy CA")
watched = issue(ca, ["www.legacy.example"], ["192.0.2.1"], serial=0x0A1B)
other = issue(ca, ["other.example"], serial=0x0C0D)
finding = [Finding("legacy", "unauthorized_issuer", Severity.CRITICAL, ("www.legacy.example",))]
store.commit_batch(feed.batch(pair_entries(watched, finding) + pair_entries(other), gap=3), [Route()])
store.outbox.enqueue_event(Health(), "https://legacy.example/ fork 3", [Route()])
store.record_misbehaviour(info.log_id, MisbehaviourKind.FORK, "two roots at size 3", {"size": 3})
store.record_error(info.log_id, "https://legacy.example/: HTTP 503")
store.close()
with sqlite3.connect(out) as conn:
    conn.execute("PRAGMA journal_mode = DELETE")
conn = sqlite3.connect(out)
conn.execute("PRAGMA page_size = 4096")
conn.execute("VACUUM")
conn.close()
