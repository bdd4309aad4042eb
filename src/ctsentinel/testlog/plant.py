"""Turn a scenario's planted issuances into log entries at fixed positions, and describe them exactly.

Positions follow the dates: a planted entry goes where the run's timeline reaches its timestamp, so the
log stays roughly in time order, and the same seed and entry count always plant at the same indexes.
The description is what scenario.json promises a monitor test: index, entry type, serial, issuer, names,
fingerprints and whether an alert is expected.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ctsentinel.ct.signatures import LogSigner
from ctsentinel.testlog import tbs as der_edit
from ctsentinel.testlog.issue import (
    CertRequest,
    Issuer,
    SubscriberKey,
    embedded_sct_list,
    precert_signed_entry,
)
from ctsentinel.testlog.scenarios import CERT, PAIR, ROGUE, Plant, Scenario
from ctsentinel.testlog.traffic import Entry, Timeline
from ctsentinel.timefmt import rfc3339

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MALFORMATIONS = ("invalid-ec-point",)


@dataclass(frozen=True)
class PlantedEntry:
    position: int  # in the run; the log index is first_index + position
    entry: Entry
    description: dict[str, object]


def serial_hex(serial: int) -> str:
    """As CertRecord.serial: lowercase hex of the INTEGER's content octets, without a 0x00 sign byte."""
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big").hex()


def place(slots: Sequence[int], count: int) -> list[int]:
    """Strictly increasing positions in [0, count), each as close to its wish as order and room allow.

    `slots` are the wished positions of entries already sorted by time. Pushing forward keeps order; pulling
    back from the end keeps everything inside the run.
    """
    if len(slots) > count:
        raise ValueError(f"{len(slots)} planted entries do not fit in {count} entries")
    out: list[int] = []
    for wish in slots:
        out.append(max(wish, out[-1] + 1) if out else wish)
    for i in range(len(out) - 1, -1, -1):
        limit = count - (len(out) - i)
        out[i] = min(out[i], limit if i == len(out) - 1 else min(limit, out[i + 1] - 1))
    return out


def plant_keys(seed: int, names: Sequence[str]) -> dict[str, SubscriberKey]:
    """One deterministic P-256 key per scenario key name: the same seed gives the same key hashes."""
    keys = {}
    for name in sorted(set(names)):
        rng = random.Random(f"ctsentinel-testlog-plant-key:{seed}:{name}")
        private = ec.derive_private_key(rng.randrange(1, _P256_ORDER), ec.SECP256R1())
        keys[name] = SubscriberKey.of(private.public_key())
    return keys


def _malform(issuer: Issuer, cert: bytes, malformation: str, key: SubscriberKey) -> bytes:
    """Re-sign `cert` after damaging it: the CA's signature is valid, the content is not."""
    tbs, algorithm, _ = der_edit.split_certificate(cert)
    if malformation == "invalid-ec-point":
        if not isinstance(key.public_key, ec.EllipticCurvePublicKey):
            raise ValueError("invalid-ec-point needs an EC subscriber key")
        point = key.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        if tbs.count(point) != 1:
            raise ValueError("subscriber point not found exactly once in the TBS")
        # 0x04 || x || y with y = 1 is not on P-256: the SPKI parses, the key does not.
        tbs = tbs.replace(point, b"\x04" + point[1:33] + (1).to_bytes(32, "big"))
    else:
        raise ValueError(f"unknown malformation {malformation!r}")
    return der_edit.certificate(tbs, algorithm, issuer.sign(tbs))


def _tbs_sha256(der: bytes) -> str:
    tbs, _, _ = der_edit.split_certificate(der)
    return hashlib.sha256(
        der_edit.without_extensions(tbs, der_edit.POISON_OID, der_edit.SCT_LIST_OID)
    ).hexdigest()


def _common_name(subject: x509.Name) -> str | None:
    values = subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


# Where each planted entry goes: (plant number, entry kind) -> (position in the run, timestamp).
Placement = dict[tuple[int, str], tuple[int, int]]


@dataclass(frozen=True)
class _Issued:
    position: int
    timestamp: int
    der: bytes
    precert: bool
    type: str  # "precert" or "cert", as the scenario file names entries


def materialize(
    scenario: Scenario,
    plants: Sequence[Plant],
    *,
    timeline: Timeline,
    first_index: int,
    issuers: Mapping[str, Issuer],
    signer: LogSigner,
    keys: Mapping[str, SubscriberKey],
    ca_subjects: Mapping[str, str],
) -> tuple[list[PlantedEntry], list[dict[str, object]]]:
    """The planted entries in log order, and one description per issuance."""
    where = _placement(plants, timeline)
    out: list[PlantedEntry] = []
    issuances: list[dict[str, object]] = []
    for number, plant in enumerate(plants):
        issuer = issuers[plant.ca_id]
        key = keys[plant.key]
        issued = _issue(plant, number, issuer, key, where, signer, first_index)
        common = _describe(scenario, plant, issuer, key, ca_subjects[plant.ca_id], issued[0].der)
        entry_descriptions = []
        for entry in issued:
            description: dict[str, object] = {
                **common,
                "index": first_index + entry.position,
                "type": entry.type,
                "timestamp": entry.timestamp,
                "sha256": hashlib.sha256(entry.der).hexdigest(),
            }
            entry_descriptions.append(description)
            out.append(
                PlantedEntry(
                    entry.position, Entry(plant.ca_id, entry.der, entry.precert, entry.timestamp), description
                )
            )
        issuances.append(
            {
                **common,
                "entries": [
                    {"index": d["index"], "type": d["type"], "sha256": d["sha256"]}
                    for d in entry_descriptions
                ],
                "sha256": [d["sha256"] for d in entry_descriptions],
            }
        )
    out.sort(key=lambda p: p.position)
    return out, issuances


def _placement(plants: Sequence[Plant], timeline: Timeline) -> Placement:
    # (timestamp, plant number, entry kind): a final certificate always sorts after its precertificate.
    wanted: list[tuple[int, int, str]] = []
    for number, plant in enumerate(plants):
        if plant.kind == PAIR:
            wanted.append((plant.precert_timestamp(), number, "precert"))
            wanted.append((plant.final_timestamp(), number, "final"))
        else:
            wanted.append((plant.precert_timestamp(), number, "cert" if plant.kind == CERT else "precert"))
    wanted.sort()
    positions = place([timeline.position(ts) for ts, _, _ in wanted], timeline.count)
    return {(number, kind): (pos, ts) for (ts, number, kind), pos in zip(wanted, positions, strict=True)}


def _issue(
    plant: Plant,
    number: int,
    issuer: Issuer,
    key: SubscriberKey,
    where: Placement,
    signer: LogSigner,
    first_index: int,
) -> list[_Issued]:
    """What the CA issues for `plant`, where each goes: a certificate, a precertificate, or both."""
    req = CertRequest(
        plant.serial,
        plant.subject,
        plant.dns_names,
        plant.ips,
        key,
        plant.not_before,
        plant.not_after,
        plant.raw_san,
    )
    if plant.kind == CERT:
        der = issuer.certificate(req)
        if plant.malformation:
            der = _malform(issuer, der, plant.malformation, key)
        pos, ts = where[(number, "cert")]
        return [_Issued(pos, ts, der, False, "cert")]
    precert = issuer.precertificate(req)
    if plant.malformation:
        precert = _malform(issuer, precert, plant.malformation, key)
    pos, ts = where[(number, "precert")]
    issued = [_Issued(pos, ts, precert, True, "precert")]
    if plant.kind == PAIR:
        signed_entry = precert_signed_entry(precert)
        sct_list = embedded_sct_list(signer, ts, signed_entry, issuer.spki_sha256, first_index + pos)
        final_pos, final_ts = where[(number, "final")]
        issued.append(
            _Issued(final_pos, final_ts, issuer.final_certificate(precert, sct_list), False, "cert")
        )
    return issued


def _describe(
    scenario: Scenario, plant: Plant, issuer: Issuer, key: SubscriberKey, ca_subject: str, first_der: bytes
) -> dict[str, object]:
    """What every entry of the issuance and the issuance itself say about it: names, keys, verdict."""
    cn = _common_name(plant.subject)
    names = plant.dns_names + ((cn,) if cn and cn not in plant.dns_names else ())
    matched: list[str] = []
    watches: list[str] = []
    for watch in scenario.watches:
        hits = watch.matches(names, plant.ips)
        if hits:
            watches.append(watch.name)
        matched.extend(m for m in hits if m not in matched)
    common: dict[str, object] = {
        "label": plant.label,
        "role": plant.role,
        "ca": plant.ca_id,
        "issuer": ca_subject,
        "issuer_spki_sha256": issuer.spki_sha256.hex(),
        "serial": serial_hex(plant.serial),
        "subject": plant.subject.rfc4514_string(),
        "common_name": cn,
        "subject_spki_sha256": key.spki_sha256.hex(),
        "dns_names": list(plant.dns_names),
        "ip_addresses": [str(ip) for ip in plant.ips],
        "not_before": rfc3339(plant.not_before),
        "not_after": rfc3339(plant.not_after),
        "tbs_sha256": _tbs_sha256(first_der),
        "watches": watches,
        "matched": matched,
        "alert": plant.role == ROGUE or (plant.role == "hostile" and bool(matched)),
    }
    if plant.malformation:
        common["malformation"] = plant.malformation
    if plant.facts:
        common["facts"] = plant.facts
    if plant.revoked_at is not None:
        reason = plant.revocation_reason
        common["revocation"] = {
            "revoked_at": rfc3339(plant.revoked_at),
            "reason": None if reason is None else reason.value,
        }
    return common
