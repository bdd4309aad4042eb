"""Watchlist matching and authorization policy: CertRecord -> Findings. Pure: no I/O."""

from ctsentinel.watch.finding import Finding
from ctsentinel.watch.watchlist import Watchlist

__all__ = ["Finding", "Watchlist"]
