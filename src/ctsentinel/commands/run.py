"""`ctsentinel run [--once]`: monitor the logs; --once catches every log up to its tree head, then exits.

On --once, one summary line per log goes to stdout; problems (a log that misbehaved or did not catch up,
deliveries still pending) go to stderr, one line each. The exit status: 0 when every log was caught up,
1 when one was not or misbehaved, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ctsentinel.config import Config, load_config
from ctsentinel.monitor.pipeline import Monitor, RunReport, log_label
from ctsentinel.monitor.progress import format_duration
from ctsentinel.terminal import safe_text


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    once: bool = args.once
    report = asyncio.run(Monitor(config, once=once).run())
    if once:
        for line in summary_lines(report):
            print(line)
    lines = problem_lines(report)
    for line in [*(lines if once else lines[: len(report.misbehaving)]), *report.undelivered]:
        print(line, file=sys.stderr)
    return report.exit_code() if once else (1 if report.misbehaving else 0)


def catch_up(config: Config) -> RunReport:
    """`run --once` without printing: what the demo uses."""
    return asyncio.run(Monitor(config, once=True).run())


def summary_lines(report: RunReport) -> list[str]:
    lines = []
    for result in report.results:
        rate = result.entries / result.seconds if result.seconds > 0 else 0.0
        state = f"{result.position:,}/{result.size:,} verified"
        if result.misbehaviour:
            state += f", MISBEHAVING ({', '.join(sorted({m.kind for m in result.misbehaviour}))})"
        elif not result.caught_up:
            state += ", NOT caught up"
        lines.append(
            f"{safe_text(log_label(result.info))}: {state}; {result.entries:,} entries in "
            f"{format_duration(result.seconds)} ({rate:,.0f}/s)"
        )
    return lines


def problem_lines(report: RunReport) -> list[str]:
    lines = []
    for result in report.misbehaving:
        first = result.misbehaviour[0]
        lines.append(f"ctsentinel: log {safe_text(result.info.url)} misbehaved: {safe_text(str(first))}")
    for result in report.incomplete if report.interrupted is False else []:
        why = result.error or "interrupted"
        lines.append(f"ctsentinel: log {safe_text(result.info.url)} not caught up: {safe_text(why)}")
    return lines
