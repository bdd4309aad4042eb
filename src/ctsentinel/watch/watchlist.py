"""The Watchlist: every watch of the config, compiled into indexes so that matching a certificate costs
about the same for ten watched items as for a hundred thousand."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Protocol

from ctsentinel.certs.record import CertRecord, MatchView
from ctsentinel.watch.addresses import AddressIndex, IPNetwork
from ctsentinel.watch.finding import Finding
from ctsentinel.watch.names import DomainIndex
from ctsentinel.watch.policy import IssuerSpec, Policy, organizations

_ORG_CACHE_LIMIT = 10_000


class WatchSpec(Protocol):
    """What a watch must provide: ctsentinel.config.WatchConfig has exactly these attributes."""

    @property
    def name(self) -> str: ...
    @property
    def domains(self) -> Sequence[str]: ...
    @property
    def ips(self) -> Sequence[IPNetwork]: ...
    @property
    def authorized_issuers(self) -> Sequence[IssuerSpec]: ...
    @property
    def authorized_keys(self) -> Sequence[str]: ...
    @property
    def approved_certificates(self) -> Sequence[str]: ...


class Watchlist:
    def __init__(self, policies: Sequence[Policy], domains: DomainIndex, addresses: AddressIndex) -> None:
        self._policies = list(policies)
        self._domains = domains
        self._addresses = addresses
        self._issuer_orgs: dict[str, frozenset[str]] = {}

    @classmethod
    def from_config(cls, watches: Sequence[WatchSpec]) -> Watchlist:
        domains = DomainIndex()
        networks: list[tuple[IPNetwork, int]] = []
        policies = []
        for watch_id, watch in enumerate(watches):
            for domain in watch.domains:
                domains.add(domain, watch_id)
            for network in watch.ips:
                networks.append((network, watch_id))
            policies.append(
                Policy.build(
                    watch.name, watch.authorized_issuers, watch.authorized_keys, watch.approved_certificates
                )
            )
        return cls(policies, domains, AddressIndex(networks))

    def __bool__(self) -> bool:
        return bool(self._policies)

    def may_match(self, view: MatchView) -> bool:
        """Whether match() could find anything for the entry: a watch covers one of its names or addresses
        (the test every entry of a log goes through; the full record is read only when it passes)."""
        if not self._policies:
            return False
        covers = self._domains.covers
        if any(covers(name) for name in view.dns_names):
            return True
        return bool(view.ip_addresses) and bool(self._hits((), view.ip_addresses))

    def match(self, record: CertRecord) -> list[Finding]:
        """One Finding per watch the record matches, in config order; [] when it matches none."""
        if not self._policies:
            return []
        hits = self._hits(record.dns_names, record.ip_addresses)
        if not hits:
            return []
        issuer_orgs = self._organizations(record.issuer)
        return [self._policies[w].judge(record, tuple(hits[w]), issuer_orgs) for w in sorted(hits)]

    def _hits(self, dns_names: Sequence[str], ip_addresses: Sequence[str]) -> dict[int, list[str]]:
        """watch id -> the names and addresses it covers, as the certificate wrote them."""
        hits: dict[int, list[str]] = {}
        for name in dns_names:
            for watch_id in self._domains.match(name):
                matched = hits.setdefault(watch_id, [])
                if name not in matched:
                    matched.append(name)
        for text in ip_addresses:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                # ::ffff:1.1.1.1 is 1.1.1.1 to a client: report it once, in the form a watch names.
                address = address.ipv4_mapped
                text = str(address)
            for watch_id in self._addresses.match(address):
                matched = hits.setdefault(watch_id, [])
                if text not in matched:
                    matched.append(text)
        return hits

    def _organizations(self, issuer: str | None) -> frozenset[str]:
        if not issuer:
            return frozenset()
        cached = self._issuer_orgs.get(issuer)
        if cached is None:
            if len(self._issuer_orgs) >= _ORG_CACHE_LIMIT:
                self._issuer_orgs.clear()
            cached = self._issuer_orgs[issuer] = organizations(issuer)
        return cached
