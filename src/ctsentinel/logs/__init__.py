"""Log lists and the clients of both CT log APIs (RFC 6962 and static-ct-api) on one HTTP client."""

from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.client import LogClient, RawEntry, TreeHead
from ctsentinel.logs.factory import make_client
from ctsentinel.logs.http import HttpClient, LogHTTPError, LogResponseError
from ctsentinel.logs.loglist import (
    DEFAULT_STATES,
    LogInfo,
    LogListError,
    LogListSource,
    bundled_log_list,
    load_log_list,
    parse_log_list,
    select_logs,
)
from ctsentinel.logs.rfc6962 import Rfc6962Client
from ctsentinel.logs.staticct import StaticCtClient

__all__ = [
    "DEFAULT_STATES",
    "HttpClient",
    "LogBudget",
    "LogClient",
    "LogHTTPError",
    "LogInfo",
    "LogListError",
    "LogListSource",
    "LogResponseError",
    "RawEntry",
    "Rfc6962Client",
    "StaticCtClient",
    "TreeHead",
    "bundled_log_list",
    "load_log_list",
    "make_client",
    "parse_log_list",
    "select_logs",
]
