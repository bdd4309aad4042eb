"""The one root of every error ctsentinel raises on purpose.

Each kind below `Error` carries a one-line message; the command line prints it as `ctsentinel: <message>`
and exits with `exit_code`. Anything that is not an `Error` is a bug, and is reported as one.
"""

from __future__ import annotations


class Error(Exception):
    """Base of every ctsentinel error; str() is one line."""

    exit_code: int = 1


class UserError(Error):
    """A problem the user can act on: bad input, a failed check, an unreachable service."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
