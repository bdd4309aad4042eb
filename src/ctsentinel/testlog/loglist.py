"""DIR/log_list.json: the test log described in Chrome's v3 log list schema.

The same log (one key, one log ID) is listed twice: under `logs` with its RFC 6962 URL and under
`tiled_logs` with its static-ct-api submission and monitoring prefixes, because it really serves both.
A client that reads both sections must treat them as one log (same log_id).
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path

from ctsentinel.ct.signatures import LogKey
from ctsentinel.timefmt import rfc3339_ms

LOG_LIST_FILE = "log_list.json"
OPERATOR = "ctsentinel"
# Wide enough for any generated certificate, historical scenarios included.
_TEMPORAL_START = "2000-01-01T00:00:00Z"
_TEMPORAL_END = "2100-01-01T00:00:00Z"


def log_list(key: LogKey, url: str, *, created_ms: int, now_ms: int, merge_delay: float) -> dict[str, object]:
    """The log list document for one log served at url (ending in "/")."""
    if not url.endswith("/"):
        raise ValueError(f"log URL {url!r} must end in '/'")
    common: dict[str, object] = {
        "key": base64.b64encode(key.spki_der).decode("ascii"),
        "log_id": base64.b64encode(key.log_id).decode("ascii"),
        # The log integrates within one merge delay; twice that leaves room for a slow tick.
        "mmd": max(1, math.ceil(2 * merge_delay)),
        "log_type": "test",
        "state": {"usable": {"timestamp": rfc3339_ms(created_ms)}},
        "temporal_interval": {"start_inclusive": _TEMPORAL_START, "end_exclusive": _TEMPORAL_END},
    }
    return {
        "version": f"1.0.{now_ms}",
        "log_list_timestamp": rfc3339_ms(now_ms),
        "operators": [
            {
                "name": OPERATOR,
                "email": ["testlog@ctsentinel.invalid"],
                "logs": [{"description": "ctsentinel test log (RFC 6962)", "url": url, **common}],
                "tiled_logs": [
                    {
                        "description": "ctsentinel test log (static-ct-api)",
                        "submission_url": url,
                        "monitoring_url": url,
                        **common,
                    }
                ],
            }
        ],
    }


def write_log_list(directory: Path, document: dict[str, object]) -> Path:
    """Write DIR/log_list.json atomically (a reader never sees half a list)."""
    path = directory / LOG_LIST_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
