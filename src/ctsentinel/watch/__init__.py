"""Watchlist matching and authorization policy: CertRecord -> Findings. Pure: no I/O."""

from ctsentinel.watch.finding import Finding, Reason
from ctsentinel.watch.severity import Severity
from ctsentinel.watch.watchlist import Watchlist

__all__ = ["Finding", "Reason", "Severity", "Watchlist"]
