"""Internal names: DNS names that do not end in a top-level domain of the Public Suffix List.

The Baseline Requirements call a name an Internal Name when it "does not end with a Top Level Domain
registered in IANA's Root Zone Database": `intranet`, `*.corp`, `host.local`. The list is the one the
`publicsuffixlist` package bundles (its ICANN section, refreshed with each release), loaded on first use;
the answer depends only on the last label, so it is cached per label.
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList


@functools.cache
def _suffix_list() -> PublicSuffixList:
    # accept_unknown=False: a name under no rule has no public suffix (the PSL algorithm's default "*"
    # rule would make every unknown TLD public).
    return PublicSuffixList(accept_unknown=False, only_icann=True)


@functools.lru_cache(maxsize=4096)
def is_public_tld(label: str) -> bool:
    """True when `label` is a top-level domain of the Public Suffix List (A-label or U-label)."""
    try:
        return _suffix_list().publicsuffix(label) is not None
    except (ValueError, UnicodeError):  # a label that is no DNS label at all
        return False


def is_internal_name(name: str) -> bool:
    """True for a DNS name (wildcard or not) that does not end in a public top-level domain."""
    return not is_public_tld(name.rstrip(".").rpartition(".")[2].lower())
