"""`ctsentinel testlog serve|populate`: a real local CT log for tests and the demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import serve_forever


def run(args: argparse.Namespace) -> int:
    if args.action == "serve":
        serve_forever(
            Path(args.dir),
            host="127.0.0.1",
            port=args.port,
            batch_size=args.batch_size,
            merge_delay=args.merge_delay,
            faults=args.fault or [],
        )
        return 0
    report = populate(Path(args.dir), entries=args.entries, scenario=args.scenario, seed=args.seed)
    print(report.summary())
    return 0
