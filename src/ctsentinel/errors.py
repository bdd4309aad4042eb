"""Errors shown to the user as one line on stderr."""


class UserError(Exception):
    """A problem the user can act on: bad input, a failed check, an unreachable service."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
