"""The ctsentinel command line. Errors print one line on stderr and exit non-zero."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctsentinel", description="Certificate Transparency monitor")
    parser.add_argument("-c", "--config", default="ctsentinel.toml", help="config file (default: %(default)s)")
    parser.add_subparsers(dest="command", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
