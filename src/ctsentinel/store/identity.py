"""This process's name among the processes sharing a database: `host:pid:nonce`.

It names the holder of every lease the process takes (store/leases.py) and, on PostgreSQL, the
`application_name` of its database sessions, so that a process taking over the leases of one that stopped
answering can end that one's sessions (a paused process would otherwise hold its row locks for as long as
it stays paused).
"""

from __future__ import annotations

import os
import secrets
import socket

_NAMES: dict[int, str] = {}


def process_name() -> str:
    """The same name for the life of the process (a forked child gets its own)."""
    pid = os.getpid()
    name = _NAMES.get(pid)
    if name is None:
        # PostgreSQL keeps 63 bytes of an application_name.
        name = _NAMES[pid] = f"{socket.gethostname()[:40]}:{pid}:{secrets.token_hex(3)}"
    return name
