"""`ctsentinel export disallow (--issuer ISSUER | --watch NAME | --alert ID…) [--format F]
[--include-issuer] [--output FILE]`: the certificates to distrust, on stdout or in FILE."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ctsentinel.commands.common import config_store
from ctsentinel.errors import UserError
from ctsentinel.oversight.disallow import DisallowFormat, disallow_list
from ctsentinel.terminal import safe_text


def run(args: argparse.Namespace) -> int:
    with config_store(args.config) as store:
        found = disallow_list(
            store,
            issuer=args.issuer,
            watch=args.watch,
            alerts=args.alert or (),
            include_issuer=args.include_issuer,
        )
    body = found.render(DisallowFormat(args.format))
    if args.output:
        try:
            Path(args.output).write_text(body, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(body)
    for problem in found.problems:
        print(f"ctsentinel: {safe_text(problem)}", file=sys.stderr)
    return 1 if found.problems else 0
