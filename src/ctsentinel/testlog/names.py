"""Subscriber identifiers for generated traffic: DNS names of the shapes real certificates carry, and IPs.

Ordinary traffic must never name anything a scenario watches, or a monitor test could not tell planted
certificates from noise. So the word list avoids "one", "test" and "cloudflare", and addresses come only
from the documentation ranges (RFC 5737 TEST-NET-1..3, RFC 3849 2001:db8::/32), which no watch list
covers and which no real certificate should name.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

import idna

_WORD_TEXT = (
    "acme amber anchor apex arbor arrow aspen atlas aurora badger bakery beacon birch bison bloom bolt "
    "bramble breeze bridge brook cactus canyon cargo cedar cinder citrus clover cobalt comet copper coral "
    "cosmos crane crest crystal cypress dahlia delta dune eagle echo ember falcon fern fjord flint forge "
    "fox garnet glacier granite grove harbor hazel heron horizon indigo iris ivory jade juniper kestrel "
    "lagoon lantern larch lemon lilac linden lotus lumen lynx magnet maple marble meadow mesa mint "
    "monarch mosaic nectar nimbus nova oak oasis olive onyx orbit orchid otter pebble pepper pine "
    "pixel plume polar poppy prairie prism quartz quill raven reef ridge river robin ruby saffron sage "
    "salmon sierra silver sparrow spruce summit tango thistle thunder tidal timber topaz tulip tundra "
    "umber valley vega velvet violet walnut willow wren yarrow zenith zephyr"
)
WORDS = tuple(_WORD_TEXT.split())
TLDS = (
    "com",
    "com",
    "com",
    "net",
    "org",
    "io",
    "de",
    "fr",
    "nl",
    "co.uk",
    "com.au",
    "ca",
    "es",
    "it",
    "pl",
    "se",
    "ch",
    "jp",
    "com.br",
    "dev",
    "app",
    "xyz",
    "info",
    "eu",
)
HR_TLDS = ("hr", "hr", "com.hr")
SUBDOMAINS = (
    "www",
    "mail",
    "api",
    "app",
    "cdn",
    "shop",
    "blog",
    "portal",
    "vpn",
    "m",
    "static",
    "auth",
    "login",
    "dev",
    "staging",
    "admin",
    "webmail",
    "smtp",
    "docs",
    "status",
)
# Unicode names whose A-labels (xn--…) show up in the log, as IDNs do in real CT traffic.
_IDN_LABELS = (
    "münchen",
    "bücher",
    "köln",
    "zürich",
    "café",
    "españa",
    "straße",
    "pōhutukawa",
    "пример",
    "москва",
    "ελλάδα",
    "例え",
    "中文网",
    "도메인",
    "مثال",
    "ไทย",
    "भारत",
)
_IDN_TLDS = ("de", "com", "ch", "xn--p1ai", "xn--fiqs8s", "net")
IDN_A_LABELS = tuple(idna.encode(label).decode("ascii") for label in _IDN_LABELS)

_V4_NETS = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
_V6_NET = ipaddress.IPv6Network("2001:db8::/32")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Identifiers:
    """What one certificate names. The CN is the first entry of `dns_names` (or of `ips` if no names)."""

    dns_names: tuple[str, ...]
    ips: tuple[IPAddress, ...] = ()
    shape: str = "single"

    @property
    def common_name(self) -> str:
        return self.dns_names[0] if self.dns_names else str(self.ips[0])


class NameGenerator:
    """Draws identifiers from `rng`; the mix roughly follows what CT logs see."""

    # (shape, weight): single name and the www pair dominate, as they do in Let's Encrypt traffic.
    SHAPES = (
        ("single", 30),
        ("www", 30),
        ("multi", 14),
        ("wildcard", 12),
        ("deep", 6),
        ("idn", 5),
        ("ipv4", 2),
        ("ipv6", 1),
    )

    def __init__(self, rng: random.Random, tlds: tuple[str, ...] = TLDS) -> None:
        self._rng = rng
        self._tlds = tlds
        self._shapes = [s for s, _ in self.SHAPES]
        self._weights = [w for _, w in self.SHAPES]

    def base_domain(self) -> str:
        rng = self._rng
        label = rng.choice(WORDS)
        roll = rng.random()
        if roll < 0.35:
            label = f"{label}-{rng.choice(WORDS)}"
        elif roll < 0.5:
            label = f"{label}{rng.randrange(1, 1000)}"
        return f"{label}.{rng.choice(self._tlds)}"

    def ipv4(self) -> ipaddress.IPv4Address:
        net = self._rng.choice(_V4_NETS)
        return net[self._rng.randrange(1, 255)]

    def ipv6(self) -> ipaddress.IPv6Address:
        return _V6_NET[self._rng.getrandbits(96)]

    def draw(self) -> Identifiers:
        rng = self._rng
        shape = rng.choices(self._shapes, self._weights)[0]
        base = self.base_domain()
        if shape == "single":
            return Identifiers((base,), (), shape)
        if shape == "www":
            return Identifiers((base, f"www.{base}"), (), shape)
        if shape == "multi":
            bases = [base] + [self.base_domain() for _ in range(rng.randrange(0, 3))]
            names: list[str] = []
            for b in bases:
                names.append(b)
                names.extend(f"{sub}.{b}" for sub in rng.sample(SUBDOMAINS, rng.randrange(1, 6)))
            return Identifiers(tuple(names), (), shape)
        if shape == "wildcard":
            return Identifiers((f"*.{base}", base), (), shape)
        if shape == "deep":
            labels = rng.sample(SUBDOMAINS + tuple(WORDS[:40]), rng.randrange(3, 6))
            return Identifiers((".".join([*labels, base]),), (), shape)
        if shape == "idn":
            idn = f"{rng.choice(IDN_A_LABELS)}.{rng.choice(_IDN_TLDS)}"
            return Identifiers((idn, f"www.{idn}"), (), shape)
        ip: IPAddress = self.ipv4() if shape == "ipv4" else self.ipv6()
        # Some IP certificates name only the address (short-lived IP certificates do), some a host too.
        return Identifiers(() if rng.random() < 0.4 else (base,), (ip,), shape)
