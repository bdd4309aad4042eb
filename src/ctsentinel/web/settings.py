"""What `ctsentinel serve` is told: plain values the command fills in from the config's [web] table."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_TIME_LIMIT = 1.0  # seconds one browsing query may take before it is stopped
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # the row limit: most results one request returns (pages follow by cursor)


@dataclass(frozen=True)
class WebSettings:
    # The shared secret that acting on alerts needs; None: nobody can act (reads stay open). Never shown:
    # not in repr, logs or error messages.
    token: str | None = field(default=None, repr=False)
    token_for_reads: bool = False  # reads need the token too
    time_limit: float = DEFAULT_TIME_LIMIT

    @property
    def actions_enabled(self) -> bool:
        return self.token is not None


@dataclass(frozen=True)
class WatchSpec:
    """A [[watch]] as the web shows it: what it covers and which issuers it authorizes."""

    name: str
    domains: tuple[str, ...]  # A-labels; "*.example.com" covers the subdomains only
    networks: tuple[str, ...]  # addresses and CIDR ranges, as text
    authorized_keys: frozenset[str] = frozenset()  # issuer SPKI SHA-256, hex
    authorized_organizations: frozenset[str] = frozenset()  # case-folded O= values

    def authorizes(self, issuer_spki_sha256: str | None, issuer_organizations: frozenset[str]) -> bool:
        if issuer_spki_sha256 is not None and issuer_spki_sha256 in self.authorized_keys:
            return True
        return bool(issuer_organizations & self.authorized_organizations)
