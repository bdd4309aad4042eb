"""The client for a log, by the API its log list entry names (RFC 6962 or static-ct-api)."""

from __future__ import annotations

from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.client import LogClient
from ctsentinel.logs.http import HttpClient
from ctsentinel.logs.loglist import LogInfo
from ctsentinel.logs.rfc6962 import Rfc6962Client
from ctsentinel.logs.staticct import StaticCtClient


def make_client(info: LogInfo, http: HttpClient, budget: LogBudget | None = None) -> LogClient:
    """The client for the log's API; a budget with the library defaults if none is given."""
    budget = budget or LogBudget()
    if info.kind == "static-ct":
        return StaticCtClient(info, http, budget)
    if info.kind == "rfc6962":
        return Rfc6962Client(info, http, budget)
    raise ValueError(f"unknown log kind {info.kind!r}")
