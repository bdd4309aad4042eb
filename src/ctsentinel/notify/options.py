"""Reading one [[notify]] table's channel options with one-line errors that name the table and the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ctsentinel.errors import UserError


class Options:
    def __init__(self, where: str, options: Mapping[str, Any]) -> None:
        self.where = where
        self.table = dict(options)

    def fail(self, message: str) -> UserError:
        return UserError(f"{self.where}: {message}")

    def _take(self, key: str, kinds: tuple[type, ...], kind_name: str, required: bool, default: Any) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(f"{key} is required")
            return default
        value = self.table.pop(key)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.fail(f"{key} must be {kind_name}, not {type(value).__name__}")
        return value

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self._take(key, (str,), "a string", required, default)
        if required and not value:
            raise self.fail(f"{key} must not be empty")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return bool(self._take(key, (bool,), "true or false", False, default))

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = float(self._take(key, (int, float), "a number", False, default))
        if not math.isfinite(value):  # TOML has nan and inf; a nan passes every comparison
            raise self.fail(f"{key} must be a finite number, not {value:g}")
        if value < minimum:
            raise self.fail(f"{key} must be at least {minimum:g}")
        return value

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int = 65535) -> int:
        value = int(self._take(key, (int,), "an integer", False, default))
        if not minimum <= value <= maximum:
            raise self.fail(f"{key} must be between {minimum} and {maximum}")
        return value

    def strings(self, key: str, *, required: bool = False, single: bool = False) -> list[str]:
        """A list of strings; with `single`, one string is taken as a list of one."""
        value = self._take(key, (list, str) if single else (list,), "a list of strings", required, [])
        values = [value] if isinstance(value, str) else value
        for position, item in enumerate(values):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{key}[{position}] must be a non-empty string")
        if required and not values:
            raise self.fail(f"{key} must not be empty")
        return list(values)

    def done(self) -> None:
        if self.table:
            raise self.fail(f"unknown option {sorted(self.table)[0]!r}")
