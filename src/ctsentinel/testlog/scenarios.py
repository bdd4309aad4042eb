"""Named scenarios: what populate plants among the ordinary traffic, and what a monitor must make of it.

- default: ordinary traffic only.
- fina-1.1.1.1: the 2024-2025 incident. Fina RDC 2020 (under Fina Root CA, Croatia) issued twelve
  precertificates naming iPAddress 1.1.1.1 beside junk names (test1.hr, test11.hr, test12.hr), some also
  2.2.2.2, a 10.x address or a bare internal hostname, dated February 2024 to August 2025, while the
  certificates Cloudflare asked for came from its usual CA (here the DigiCert-like "Example Global G2 TLS
  RSA SHA256 2020 CA1"). The three reported serials come from the dev-security-policy report; the other
  nine follow the same layout (8 random bytes, 4 zero bytes, a counter). Their exact names and dates
  were not public, so they are a plausible reconstruction, and scenario.json says which are which.
  All twelve are revoked, as Fina revoked them: the nine older ones soon after issuance (Fina said they
  were revoked before the report; when is not public, so three days after issuance here), the three
  reported ones on 2025-09-03, the day of the report. The CRLs and OCSP of the CA repository say so.
- hostile: names a monitor must print safely (control characters, ANSI escapes, HTML, shell and SQL
  metacharacters, very long names, hundreds of SANs, bidi overrides) and certificates that are signed by
  their CA but malformed (an invalid public key, an empty SAN, inverted validity, UTF-8 in an IA5String).
"""

from __future__ import annotations

import datetime
import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID

from ctsentinel.testlog import tbs as der_edit
from ctsentinel.testlog.traffic import MS, fina_counter, fina_serial

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ROGUE, AUTHORIZED, HOSTILE = "rogue", "authorized", "hostile"
PAIR, PRECERT, CERT = "pair", "precert", "cert"


def _utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def _ips(*texts: str) -> tuple[IPAddress, ...]:
    return tuple(ipaddress.ip_address(t) for t in texts)


@dataclass(frozen=True)
class Plant:
    """One planted issuance: a precertificate and its final certificate (PAIR), or one entry alone."""

    label: str
    ca_id: str
    role: str  # ROGUE: must alert; AUTHORIZED: matches a watch but its issuer is authorized; HOSTILE
    subject: x509.Name
    dns_names: tuple[str, ...]
    ips: tuple[IPAddress, ...]
    serial: int
    not_before: datetime.datetime
    validity: datetime.timedelta
    kind: str  # PAIR, PRECERT or CERT
    key: str  # which subscriber key (scenario-local name), so renewals can reuse one
    logged_after: datetime.timedelta = datetime.timedelta(minutes=2)  # notBefore -> first log entry
    final_after: datetime.timedelta = datetime.timedelta(minutes=7)  # precert entry -> final cert entry
    raw_san: bytes | None = None  # the SAN extnValue as given, for names cryptography would not encode
    malformation: str | None = None  # a post-signing defect name, see MALFORMATIONS in plant.py
    facts: dict[str, object] = field(default_factory=dict)  # what is known from public reports
    revoked_at: datetime.datetime | None = None  # when its CA revoked it, if it did
    revocation_reason: x509.ReasonFlags | None = None

    @property
    def not_after(self) -> datetime.datetime:
        return self.not_before + self.validity - datetime.timedelta(seconds=1)

    def precert_timestamp(self) -> int:
        return int((self.not_before + self.logged_after).timestamp() * MS)

    def final_timestamp(self) -> int:
        return self.precert_timestamp() + int(self.final_after.total_seconds() * MS)


@dataclass(frozen=True)
class Watch:
    """A [[watch]] as DESIGN.md section 4 configures it; authorized issuers are CA ids, resolved later."""

    name: str
    domains: tuple[str, ...]
    ips: tuple[str, ...]
    authorized_cas: tuple[str, ...] = ()

    def matches(self, dns_names: tuple[str, ...], ips: tuple[IPAddress, ...]) -> list[str]:
        """The certificate's identifiers this watch covers (a domain covers its subdomains)."""
        out: list[str] = []
        addresses = list(ips)
        for name in dns_names:
            # DESIGN.md 5: IP text in a DNS name counts as an address, as the monitor's decoder treats it.
            try:
                addresses.append(ipaddress.ip_address(name))
                continue
            except ValueError:
                pass
            lowered = name.lower()
            if any(lowered == d or lowered.endswith("." + d) for d in self.domains):
                out.append(name)
        networks = [ipaddress.ip_network(n) for n in self.ips]
        out.extend(str(ip) for ip in addresses if any(ip in net for net in networks))
        return out


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    watches: tuple[Watch, ...]
    authorized_cas: tuple[str, ...]
    rogue_cas: tuple[str, ...]
    plants: Callable[[random.Random], list[Plant]]


# --- fina-1.1.1.1 -----------------------------------------------------------------------------------------

_DAYS_365 = datetime.timedelta(days=365)
# When Fina revoked the reported three (facts.json: "all revoked by 2025-09-04 UTC"), and how long after
# issuance this reconstruction has it revoke the nine older test certificates.
_FINA_REPORTED_REVOKED_AT = _utc("2025-09-03T18:00:00")
_FINA_TEST_REVOKED_AFTER = datetime.timedelta(days=3)
_FINA_SUBJECT_BASE = (
    (NameOID.COUNTRY_NAME, "HR"),
    (NameOID.LOCALITY_NAME, "Zagreb"),
    (NameOID.ORGANIZATION_NAME, "Financijska agencija"),
)

# (precertificate date, CN, DNS names, IP addresses, final certificate logged too)
# The first nine are reconstructed; the last three are the reported ones (facts.json).
_FINA_ISSUANCES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], bool], ...] = (
    ("2024-02-13T09:41:07", "test1.hr", ("test1.hr",), ("1.1.1.1",), False),
    ("2024-02-29T13:05:51", "test11.hr", ("test11.hr", "test12.hr"), ("1.1.1.1", "2.2.2.2"), True),
    ("2024-04-10T08:17:33", "test1.hr", ("test1.hr",), ("1.1.1.1", "10.1.10.10"), False),
    ("2024-06-05T11:52:20", "test12.hr", ("test12.hr",), ("1.1.1.1",), False),
    ("2024-08-21T14:30:02", "test1.hr", ("test1.hr", "test11.hr"), ("1.1.1.1", "2.2.2.2"), True),
    ("2024-10-16T10:08:45", "test11.hr", ("test11.hr", "rdctest"), ("1.1.1.1",), False),
    ("2024-12-04T15:21:39", "test1.hr", ("test1.hr", "test12.hr"), ("1.1.1.1", "10.1.10.10"), False),
    ("2025-01-22T09:03:14", "test12.hr", ("test12.hr",), ("1.1.1.1", "2.2.2.2"), False),
    ("2025-03-19T12:44:58", "test1.hr", ("test1.hr", "test11.hr", "test12.hr"), ("1.1.1.1",), False),
    ("2025-05-12T10:26:41", "test1.hr", ("test1.hr", "test12.hr"), ("1.1.1.1",), True),
    ("2025-06-26T13:37:09", "test1.hr", ("test1.hr", "test11.hr"), ("1.1.1.1",), False),
    ("2025-08-01T08:55:30", "test11.hr", ("test11.hr", "test12.hr"), ("1.1.1.1",), True),
)
# incidents/fina-1.1.1.1-2025/facts.json: serial, crt.sh id, Censys SHA-256 of the real precertificates.
REPORTED_FINA = (
    (
        "d3:16:7e:fd:77:ca:d7:59:00:00:00:00:5f:c7:c6:72",
        18603461241,
        "8abd30c3c154a4be2a1f82e2c0e96a7d4328320f743cc629778455a76632ceee",
    ),
    (
        "f9:72:55:2d:6a:c0:88:28:00:00:00:00:5f:c8:6f:4d",
        19749721864,
        "379d358af1a38f8b06866ea3342b15909ec566b5cd2404fda34fecfe07643abf",
    ),
    (
        "be:b8:ef:1b:1c:6c:ff:53:00:00:00:00:5f:c8:cd:e5",
        20582951233,
        "d42b028468e73795365102058cbcd350ad0a0b9ca7073c5362a570c5ec208a92",
    ),
)

CLOUDFLARE_WATCH = Watch(
    "cloudflare-dns",
    domains=("one.one.one.one", "cloudflare-dns.com"),
    ips=("1.1.1.1", "1.0.0.1", "2606:4700:4700::/48"),
    authorized_cas=("example-global-g2-tls-rsa-sha256-2020-ca1",),
)
_CLOUDFLARE_NAMES = ("cloudflare-dns.com", "*.cloudflare-dns.com", "one.one.one.one")
_CLOUDFLARE_IPS = _ips("1.1.1.1", "1.0.0.1", "2606:4700:4700::1111", "2606:4700:4700::1001")
_CLOUDFLARE_SUBJECT = _name(
    (NameOID.COUNTRY_NAME, "US"),
    (NameOID.STATE_OR_PROVINCE_NAME, "California"),
    (NameOID.LOCALITY_NAME, "San Francisco"),
    (NameOID.ORGANIZATION_NAME, "Cloudflare, Inc."),
    (NameOID.COMMON_NAME, "cloudflare-dns.com"),
)
# The authorized CA's yearly renewals (DigiCert's profile: 00:00:00 notBefore, a year and a month).
_CLOUDFLARE_RENEWALS = ("2024-01-08T00:00:00", "2025-01-06T00:00:00", "2025-07-14T00:00:00")


def _serial_from_hex(text: str) -> int:
    return int(text.replace(":", ""), 16)


def fina_plants(rng: random.Random) -> list[Plant]:
    plants: list[Plant] = []
    reported_from = len(_FINA_ISSUANCES) - len(REPORTED_FINA)
    for number, (when, cn, names, ips, with_final) in enumerate(_FINA_ISSUANCES):
        not_before = _utc(when)
        facts: dict[str, object] = {}
        if number >= reported_from:
            serial_text, crtsh_id, censys = REPORTED_FINA[number - reported_from]
            serial = _serial_from_hex(serial_text)
            revoked_at = _FINA_REPORTED_REVOKED_AT
            # The CA learned that the names were never validated: BR 4.9.1.1, reason superseded.
            reason = x509.ReasonFlags.superseded
            facts = {
                "reported": True,
                "serial": serial_text,
                "crt.sh_id": crtsh_id,
                "censys_sha256_of_real_precertificate": censys,
                "source": "incidents/fina-1.1.1.1-2025/facts.json",
            }
        else:
            serial = fina_serial(rng, fina_counter(int(not_before.timestamp() * MS)))
            revoked_at = not_before + _FINA_TEST_REVOKED_AFTER
            reason = x509.ReasonFlags.cessation_of_operation  # a test certificate, its test over
            facts = {"reported": False, "note": "reconstructed: names and date plausible, not public"}
        plants.append(
            Plant(
                label=f"fina-{number + 1:02d}",
                ca_id="fina-rdc-2020",
                role=ROGUE,
                subject=_name(*_FINA_SUBJECT_BASE, (NameOID.COMMON_NAME, cn)),
                dns_names=names,
                ips=_ips(*ips),
                serial=serial,
                not_before=not_before,
                validity=_DAYS_365,
                kind=PAIR if with_final else PRECERT,
                key=f"fina-{number % 3}",
                facts=facts,
                revoked_at=revoked_at,
                revocation_reason=reason,
            )
        )
    for number, when in enumerate(_CLOUDFLARE_RENEWALS):
        plants.append(
            Plant(
                label=f"cloudflare-{number + 1:02d}",
                ca_id="example-global-g2-tls-rsa-sha256-2020-ca1",
                role=AUTHORIZED,
                subject=_CLOUDFLARE_SUBJECT,
                dns_names=_CLOUDFLARE_NAMES,
                ips=_CLOUDFLARE_IPS,
                serial=rng.getrandbits(128) | (1 << 120),
                not_before=_utc(when),
                validity=datetime.timedelta(days=396),
                kind=PAIR,
                key="cloudflare",
                logged_after=datetime.timedelta(hours=15, minutes=rng.randrange(60)),
                facts={"note": "the legitimate certificate, from the CA Cloudflare authorizes"},
            )
        )
    return plants


FINA_SCENARIO = Scenario(
    name="fina-1.1.1.1",
    description=(
        "Fina RDC 2020 (O=Financijska agencija, C=HR) issues 12 unauthorized precertificates for "
        "iPAddress 1.1.1.1 (Feb 2024 - Aug 2025) among ordinary traffic, beside Cloudflare's legitimate "
        "certificates from its authorized CA"
    ),
    watches=(CLOUDFLARE_WATCH,),
    authorized_cas=CLOUDFLARE_WATCH.authorized_cas,
    rogue_cas=("fina-rdc-2020",),
    plants=fina_plants,
)


# --- hostile ----------------------------------------------------------------------------------------------

HOSTILE_WATCH = Watch("hostile", domains=("hostile.example",), ips=("198.18.0.0/24",))
_H = ".hostile.example"
_HOSTILE_NAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ansi-escapes", ("\x1b[2J\x1b[31mowned\x1b[0m" + _H, "\x1b]0;pwned\x07title" + _H)),
    (
        "html",
        (
            "<script>alert(document.domain)</script>" + _H,
            '<img src=x onerror="alert(1)">' + _H,
            "&lt;b&gt;&amp;" + _H,
        ),
    ),
    (
        "control-characters",
        (
            "nul\x00byte" + _H,
            "new\nline" + _H,
            "carriage\rreturn" + _H,
            "tab\tname" + _H,
            "bell\x07del\x7f" + _H,
            "back\x08space" + _H,
        ),
    ),
    (
        "injection",
        (
            "$(reboot)" + _H,
            "`id`" + _H,
            "'; DROP TABLE certificates;--" + _H,
            '"},{"injected":"' + _H,
            "%s%n%x" + _H,
            "../../etc/passwd" + _H,
        ),
    ),
    ("long-names", (".".join(["a" * 63] * 4) + _H, "x" * 300 + _H, ".".join(["deep"] * 800) + _H)),
    ("odd-wildcards", ("*.*" + _H, "*" + _H, "UPPER.CASE" + _H, "*" + "." * 3 + "dots" + _H)),
    ("ip-text-in-dns", ("198.18.0.66", "2001:db8::66" + _H)),
)


def _hostile_subject(cn: str) -> x509.Name:
    return _name((NameOID.COMMON_NAME, cn))


def hostile_plants(rng: random.Random) -> list[Plant]:
    start = _utc("2024-03-04T10:00:00")
    plants: list[Plant] = []

    def add(label: str, **kw: object) -> None:
        number = len(plants)
        base: dict[str, object] = {
            "label": f"hostile-{label}",
            "ca_id": "example-tls-rsa-ca-1",
            "role": HOSTILE,
            "ips": (),
            "serial": rng.getrandbits(128) | (1 << 120),
            "not_before": start + datetime.timedelta(days=37 * number),
            "validity": _DAYS_365,
            "kind": (PAIR, CERT, PRECERT)[number % 3],
            "key": "hostile",
        }
        base.update(kw)
        plants.append(Plant(**base))  # type: ignore[arg-type]

    for label, names in _HOSTILE_NAMES:
        # X.520 caps a CN at 64 characters and cryptography enforces it, so long names stay in the SAN.
        cn = names[0] if len(names[0]) <= 64 else label + _H
        add(label, subject=_hostile_subject(cn), dns_names=names)
    add(
        "bidi-cn",
        subject=_hostile_subject("\u202etxt.exe" + _H),
        dns_names=("bidi" + _H,),
        ips=_ips("198.18.0.66"),
    )
    many = tuple(f"san{n:04d}{_H}" for n in range(400))
    add("many-sans", subject=_hostile_subject(many[0]), dns_names=many)
    utf8 = "bücher" + _H
    add(
        "utf8-in-ia5string",
        subject=_hostile_subject("utf8" + _H),
        dns_names=(utf8,),
        raw_san=der_edit.tlv(der_edit.SEQUENCE, der_edit.tlv(0x82, utf8.encode("utf-8"))),
        kind=CERT,
    )
    add(
        "empty-san",
        subject=_hostile_subject("empty-san" + _H),
        dns_names=(),
        raw_san=der_edit.tlv(der_edit.SEQUENCE, b""),
        kind=CERT,
    )
    add(
        "empty-dns-name",
        subject=_hostile_subject("empty-name" + _H),
        dns_names=("",),
        raw_san=der_edit.tlv(der_edit.SEQUENCE, der_edit.tlv(0x82, b"")),
        kind=CERT,
    )
    add(
        "inverted-validity",
        subject=_hostile_subject("inverted" + _H),
        dns_names=("inverted" + _H,),
        validity=datetime.timedelta(days=-30),
        kind=CERT,
    )
    add(
        "invalid-public-key",
        subject=_hostile_subject("badkey" + _H),
        dns_names=("badkey" + _H,),
        malformation="invalid-ec-point",
        kind=CERT,
    )
    return plants


HOSTILE_SCENARIO = Scenario(
    name="hostile",
    description=(
        "names with control characters, ANSI escapes, HTML, injection strings, very long and very many "
        "names, and CA-signed but malformed certificates, all under hostile.example"
    ),
    watches=(HOSTILE_WATCH,),
    authorized_cas=(),
    rogue_cas=(),
    plants=hostile_plants,
)

DEFAULT_SCENARIO = Scenario("default", "ordinary traffic only", (), (), (), lambda rng: [])

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (DEFAULT_SCENARIO, FINA_SCENARIO, HOSTILE_SCENARIO)}
