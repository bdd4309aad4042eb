"""What several commands share: the store the config names, and stored values as terminal text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ctsentinel.config import load_config
from ctsentinel.store import Store
from ctsentinel.terminal import safe_text


@contextmanager
def config_store(config_path: str) -> Iterator[Store]:
    """The store of the database the config file names, closed on the way out."""
    store = Store.open(load_config(config_path).database)
    try:
        yield store
    finally:
        store.close()


def text(value: object) -> str:
    """A stored value for the terminal: lists joined by commas, None as nothing, hostile text escaped."""
    if isinstance(value, list):
        return ", ".join(safe_text(str(v)) for v in value)
    return safe_text("" if value is None else str(value))


def entries_text(entries: object) -> str:
    """Where a certificate was seen: "precert at <log> #42; x509 at <log> #43"."""
    if not isinstance(entries, list):
        return ""
    return "; ".join(f"{text(e.get('type'))} at {text(e.get('log'))} #{e.get('index')}" for e in entries)
