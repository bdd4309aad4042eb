"""`testlog populate`: ordinary traffic, read back from the log's storage and decoded independently.

One module-scoped log of 1500 entries (default scenario) serves most checks; each check names a property of
real CT traffic the generator claims, and fails if a single certificate breaks it.
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import ipaddress
import itertools
import json
import os
import stat
from pathlib import Path

import idna
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.cli import main
from ctsentinel.ct.errors import SignatureError
from ctsentinel.ct.merkle import leaf_hash, root_hash
from ctsentinel.ct.signatures import LogSigner, verify_sct, verify_sth
from ctsentinel.ct.tiles import decode_leaf_index_extension
from ctsentinel.ct.tls import LogEntryType, decode_sct_list
from ctsentinel.errors import UserError
from ctsentinel.testlog import populate as populate_module
from ctsentinel.testlog.ca import SPECS, CAHierarchy
from ctsentinel.testlog.issue import CertRequest, Issuer, SubscriberKey, embedded_sct_list
from ctsentinel.testlog.names import IDN_A_LABELS
from ctsentinel.testlog.plant import place
from ctsentinel.testlog.populate import populate
from testlog_populated import LoggedEntry, read_log

ENTRIES = 1500
SEED = 11
WATCHED = ("cloudflare-dns.com", "one.one.one.one", "test1.hr", "test11.hr", "test12.hr")
WATCHED_IPS = tuple(ipaddress.ip_network(n) for n in ("1.1.1.1/32", "1.0.0.1/32", "2606:4700:4700::/48"))


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("populated") / "log"
    report = populate(directory, entries=ENTRIES, scenario=None, seed=SEED)
    assert report.entries_added == ENTRIES
    return directory


@pytest.fixture(scope="module")
def logged(log_dir: Path) -> list[LoggedEntry]:
    return read_log(log_dir)[2]


def test_exact_count_and_a_tree_head_over_all_of_it(log_dir: Path) -> None:
    sth, key, entries = read_log(log_dir)
    assert sth.tree_size == len(entries) == ENTRIES
    verify_sth(key, sth)
    assert root_hash([leaf_hash(e.leaf_input) for e in entries]) == sth.root_hash
    assert [e.leaf_index for e in entries] == list(range(ENTRIES))


def test_every_certificate_is_signed_by_the_issuer_it_is_logged_with(logged: list[LoggedEntry]) -> None:
    for e in logged:
        e.cert.verify_directly_issued_by(e.issuer_cert)
        # the chain goes up to a self-signed root
        root = x509.load_der_x509_certificate(e.chain[-1])
        assert root.subject == root.issuer
        e.issuer_cert.verify_directly_issued_by(root)
    # and a flipped TBS byte breaks the signature (the check above can fail)
    e = logged[0]
    tbs = bytearray(e.cert.tbs_certificate_bytes)
    tbs[-5] ^= 1
    key = e.issuer_cert.public_key()
    with pytest.raises(InvalidSignature):
        if isinstance(key, rsa.RSAPublicKey):
            from cryptography.hazmat.primitives.asymmetric import padding

            key.verify(e.cert.signature, bytes(tbs), padding.PKCS1v15(), e.cert.signature_hash_algorithm)  # type: ignore[arg-type]
        else:
            assert isinstance(key, ec.EllipticCurvePublicKey)
            key.verify(e.cert.signature, bytes(tbs), ec.ECDSA(e.cert.signature_hash_algorithm))  # type: ignore[arg-type]


def _by_issuance(logged: list[LoggedEntry]) -> dict[tuple[str, int], list[LoggedEntry]]:
    groups: dict[tuple[str, int], list[LoggedEntry]] = collections.defaultdict(list)
    for e in logged:
        groups[(e.issuer, e.cert.serial_number)].append(e)
    return groups


def test_precertificate_and_certificate_pairs_share_the_tbs(logged: list[LoggedEntry]) -> None:
    pairs = 0
    for (_, serial), group in _by_issuance(logged).items():
        assert len(group) <= 2, f"serial {serial:x} issued more than once"
        if len(group) < 2:
            continue
        pre, final = group
        assert pre.precert and not final.precert and pre.index < final.index <= pre.index + 30
        # RFC 6962 3.1: the certificate's TBS minus the SCT list is the precertificate's TBS minus the
        # poison, which the log stored as the precert_entry's signed_entry.
        assert final.has_sct_list
        assert final.cert.tbs_precertificate_bytes == pre.signed_entry
        assert (
            pre.issuer_key_hash
            == hashlib.sha256(
                pre.issuer_cert.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).digest()
        )
        pairs += 1
    precerts = sum(e.precert for e in logged)
    assert pairs >= 0.7 * precerts  # pairs are the norm...
    assert precerts - pairs > 10  # ...but some precertificates never see their certificate logged
    lone = [e for e in logged if not e.precert and not e.has_sct_list]
    assert len(lone) > 20  # and some certificates are logged alone


def _octet_string_contents(der: bytes) -> bytes:
    assert der[0] == 0x04
    if der[1] < 0x80:
        return der[2:]
    n = der[1] & 0x7F
    assert int.from_bytes(der[2 : 2 + n], "big") == len(der) - 2 - n
    return der[2 + n :]


def test_embedded_scts_are_the_logs_own(log_dir: Path, logged: list[LoggedEntry]) -> None:
    _, key, _ = read_log(log_dir)
    checked = 0
    for group in _by_issuance(logged).values():
        if len(group) != 2:
            continue
        pre, final = group
        ext = final.cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps)
        (sct,) = decode_sct_list(_octet_string_contents(ext.value.public_bytes()))
        assert sct.log_id == key.log_id
        assert sct.timestamp == pre.timestamp
        assert decode_leaf_index_extension(sct.extensions) == pre.index
        verify_sct(key, sct, LogEntryType.PRECERT_ENTRY, pre.signed_entry, pre.issuer_key_hash)
        checked += 1
    assert checked > 200
    damaged = bytearray(pre.signed_entry)
    damaged[20] ^= 0x01
    with pytest.raises(SignatureError):
        verify_sct(key, sct, LogEntryType.PRECERT_ENTRY, bytes(damaged), pre.issuer_key_hash)


def test_traffic_mix(logged: list[LoggedEntry]) -> None:
    names = [n for e in logged for n in e.dns_names]
    ips = [ip for e in logged for ip in e.ips]
    assert any(n.startswith("*.") for n in names)
    idns = {n for n in names if any(label.startswith("xn--") for label in n.split("."))}
    assert idns
    for name in idns:  # real A-labels: they decode to Unicode and encode back
        assert idna.encode(idna.decode(name)).decode() == name
    assert any(n.count(".") >= 4 for n in names)  # deep subdomains
    assert any(len(e.dns_names) >= 5 for e in logged)  # multi-SAN
    v4 = [ip for ip in ips if ip.version == 4]
    v6 = [ip for ip in ips if ip.version == 6]
    assert v4 and v6
    assert len(v4) + len(v6) < 0.1 * len(logged)  # IP SANs are rare
    for e in logged:
        identifiers = set(e.dns_names) | {str(ip) for ip in e.ips}
        assert e.common_name in identifiers
        serial = e.cert.serial_number
        assert 0 < serial < 1 << 159
        assert 16 <= (serial.bit_length() + 7) // 8 <= 20
        days = (e.cert.not_valid_after_utc - e.cert.not_valid_before_utc + datetime.timedelta(seconds=1)).days
        assert days in (90, 365, 396)
        # the CA signed shortly before the log saw it (a final certificate a few entries later, which in
        # this sparse 1500-entry timeline is days) and backdated notBefore by an hour
        lag = e.logged_at - e.cert.not_valid_before_utc
        assert (
            datetime.timedelta(hours=1)
            <= lag
            <= (datetime.timedelta(days=15) if e.has_sct_list else datetime.timedelta(hours=1, seconds=91))
        )


def test_several_issuers_with_different_volumes(logged: list[LoggedEntry]) -> None:
    volume = collections.Counter(e.issuer for e in logged)
    assert len(volume) == 6
    counts = sorted(volume.values())
    assert counts[-1] > 4 * counts[0]
    assert "CN=R10,O=Example Encrypt,C=US" in volume
    assert "CN=E6,O=Example Encrypt,C=US" in volume
    algorithms = {type(e.issuer_cert.public_key()) for e in logged}
    assert any(issubclass(a, rsa.RSAPublicKey) for a in algorithms)
    assert any(issubclass(a, ec.EllipticCurvePublicKey) for a in algorithms)
    subscriber_keys = {
        e.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for e in logged
    }
    assert 20 < len(subscriber_keys) < len(logged) / 4  # subscribers reuse keys


def test_ordinary_traffic_never_names_watched_things(logged: list[LoggedEntry]) -> None:
    for e in logged:
        for name in e.dns_names:
            assert not any(name == w or name.endswith("." + w) for w in WATCHED), name
        for ip in e.ips:
            assert not any(ip.version == n.version and ip in n for n in WATCHED_IPS), ip


def test_timestamps_follow_log_order(logged: list[LoggedEntry]) -> None:
    stamps = [e.timestamp for e in logged]
    assert stamps == sorted(stamps)
    first, last = logged[0].logged_at, logged[-1].logged_at
    assert datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC) <= first < last
    assert last < datetime.datetime(2025, 9, 1, tzinfo=datetime.UTC)


def test_scenario_json_describes_the_ca_hierarchy(log_dir: Path) -> None:
    data = json.loads((log_dir / "scenario.json").read_text())
    cas = {c["id"]: c for c in data["cas"]}
    assert set(cas) == {s.id for s in SPECS}
    for ca in cas.values():
        cert = x509.load_pem_x509_certificate((log_dir / ca["pem"]).read_bytes())
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert hashlib.sha256(spki).hexdigest() == ca["spki_sha256"]
        assert cert.subject.rfc4514_string() == ca["subject"]
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ca["name"]
        key_path = log_dir / ca["private_key"]
        assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
        private = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert (
            private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == spki
        )
        parent = cas[ca["parent"]] if ca["parent"] else ca
        issuer = x509.load_pem_x509_certificate((log_dir / parent["pem"]).read_bytes())
        cert.verify_directly_issued_by(issuer)
        assert ca["role"] == ("root" if ca["parent"] is None else "intermediate")
    assert stat.S_IMODE(os.stat(log_dir / "cas" / "private").st_mode) == 0o700
    assert cas["example-r10"]["key_type"] == "rsa-2048" and cas["example-e6"]["key_type"] == "ecdsa-p256"
    assert data["log"]["key"] and data["tree_size"] == ENTRIES
    assert data["runs"][0]["planted"] == [] and data["expected_alerts"] == []


def test_appending_continues_the_same_hierarchy(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    populate(directory, entries=120, scenario=None, seed=3)
    before = {p.name: p.read_bytes() for p in (directory / "cas").rglob("*.pem")}
    report = populate(directory, entries=80, scenario=None, seed=4)
    assert report.first_index == 120 and report.tree_size == 200 and report.entries_added == 80
    assert {p.name: p.read_bytes() for p in (directory / "cas").rglob("*.pem")} == before
    sth, _, entries = read_log(directory)
    assert sth.tree_size == 200
    hierarchy = {
        x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        for name, pem in before.items()
        if not name.endswith(".key.pem")
    }
    assert {e.chain[0] for e in entries} <= hierarchy  # both runs issued from the CAs saved by the first
    runs = json.loads((directory / "scenario.json").read_text())["runs"]
    assert [(r["first_index"], r["end_index"], r["seed"]) for r in runs] == [(0, 120, 3), (120, 200, 4)]


def _fingerprint(
    entries: list[LoggedEntry],
) -> list[tuple[bool, str, str, tuple[str, ...], tuple[str, ...], int]]:
    return [
        (e.precert, e.issuer, e.serial_hex, tuple(e.dns_names), tuple(map(str, e.ips)), e.timestamp)
        for e in entries
    ]


def test_same_seed_same_traffic_in_or_out_of_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # several chunks, generated here or by worker processes: order and content must not depend on who
    # generated a chunk, nor on when it finished
    monkeypatch.setattr(populate_module, "CHUNK", 128)
    populate(tmp_path / "a", entries=700, scenario=None, seed=5)
    report = populate(tmp_path / "b", entries=700, scenario=None, seed=5, workers=2)
    assert report.workers == 2
    populate(tmp_path / "c", entries=700, scenario=None, seed=6)
    a, b, c = (_fingerprint(read_log(tmp_path / d)[2]) for d in "abc")
    assert a == b
    assert a != c


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown scenario"):
        populate(tmp_path / "x", entries=10, scenario="nope", seed=1)
    with pytest.raises(UserError, match="at least 0"):
        populate(tmp_path / "x", entries=-1, scenario=None, seed=1)


def test_cli_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "cli"
    assert main(["testlog", "populate", "--dir", str(directory), "--entries", "40", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert f"populated {directory}: 40 entries added" in out
    assert "tree size 40" in out and "entries/s" in out and "MB on disk" in out
    assert read_log(directory)[0].tree_size == 40


# --- the DER assembly, held to cryptography's CertificateBuilder byte for byte ---------------------------


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> CAHierarchy:
    return CAHierarchy.load_or_create(tmp_path_factory.mktemp("cas"), seed=1)


_EC_KEYS = [SubscriberKey.of(ec.derive_private_key(k, ec.SECP256R1()).public_key()) for k in (3, 5, 7)]
_RSA_KEY = SubscriberKey.of(rsa.generate_private_key(65537, 2048).public_key())
_LABEL = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(
    ca=st.sampled_from(["example-r10", "example-e6", "fina-rdc-2020", "example-tls-ecc-ca-1"]),
    serial=st.integers(min_value=1, max_value=(1 << 159) - 1),
    names=st.lists(
        st.builds(lambda a, b: f"{a}.{b}", _LABEL, st.sampled_from(["com", "hr", "co.uk"])), max_size=6
    ),
    wildcard=st.booleans(),
    ips=st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), max_size=3),
    start=st.datetimes(min_value=datetime.datetime(1990, 1, 1), max_value=datetime.datetime(2060, 1, 1)),
    days=st.integers(min_value=1, max_value=4000),
    rsa_key=st.booleans(),
    poison=st.booleans(),
    empty_subject=st.booleans(),
)
def test_assembled_tbs_equals_certificate_builder(
    hierarchy: CAHierarchy,
    ca: str,
    serial: int,
    names: list[str],
    wildcard: bool,
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    start: datetime.datetime,
    days: int,
    rsa_key: bool,
    poison: bool,
    empty_subject: bool,
) -> None:
    if wildcard and names:
        names = [f"*.{names[0]}", *names]
    if not names and not ips:
        names = ["only.example.com"]
    subject = (
        x509.Name([])
        if empty_subject
        else x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "HR"),
                x509.NameAttribute(NameOID.COMMON_NAME, "x.example"),
            ]
        )
    )
    not_before = start.replace(tzinfo=datetime.UTC, microsecond=0)
    req = CertRequest(
        serial,
        subject,
        names,
        ips,
        _RSA_KEY if rsa_key else _EC_KEYS[serial % 3],
        not_before,
        not_before + datetime.timedelta(days=days),
    )
    issuer = Issuer(hierarchy[ca], validation="ov" if serial % 2 else "dv")
    reference = x509.load_der_x509_certificate(issuer.build_with_cryptography(req, poison=poison))
    assert issuer.tbs(req, poison=poison) == reference.tbs_certificate_bytes
    ours = x509.load_der_x509_certificate(issuer.precertificate(req) if poison else issuer.certificate(req))
    assert ours.tbs_certificate_bytes == reference.tbs_certificate_bytes
    ours.verify_directly_issued_by(hierarchy[ca].cert)


def test_pair_tbs_differ_only_in_the_ct_extension(hierarchy: CAHierarchy) -> None:
    issuer = Issuer(hierarchy["example-e6"])
    nb = datetime.datetime(2025, 3, 1, tzinfo=datetime.UTC)
    req = CertRequest(
        1234567,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com")]),
        ["a.example.com"],
        [],
        _EC_KEYS[0],
        nb,
        nb + datetime.timedelta(days=90),
    )
    signer = LogSigner.generate()
    seen: list[bytes] = []

    def sct_list(signed_entry: bytes) -> bytes:
        seen.append(signed_entry)
        return embedded_sct_list(signer, 1740787200000, signed_entry, issuer.spki_sha256, 42)

    precert, final = issuer.pair(req, sct_list)
    pre_cert, final_cert = x509.load_der_x509_certificate(precert), x509.load_der_x509_certificate(final)
    assert seen == [final_cert.tbs_precertificate_bytes]
    assert pre_cert.extensions.get_extension_for_class(x509.PrecertPoison).critical
    assert [e.oid for e in pre_cert.extensions][:-1] == [e.oid for e in final_cert.extensions][:-1]
    assert issuer.tbs(req, poison=True) == pre_cert.tbs_certificate_bytes


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=60).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.integers(0, n - 1), max_size=n))
    )
)
def test_place_keeps_order_and_bounds(case: tuple[int, list[int]]) -> None:
    count, wishes = case
    wishes.sort()
    got = place(wishes, count)
    assert len(got) == len(wishes)
    assert all(0 <= p < count for p in got)
    assert all(a < b for a, b in itertools.pairwise(got))
    if len(set(wishes)) == len(wishes):
        assert got == wishes  # room and order already fine: every entry lands where it wished


def test_place_refuses_too_many() -> None:
    with pytest.raises(ValueError):
        place([0, 0, 0], 2)


def test_idn_labels_are_a_labels() -> None:
    for label in IDN_A_LABELS:
        assert label.startswith("xn--") and idna.decode(label) != label
