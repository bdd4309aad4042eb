"""pkilint behind ctsentinel.oversight.lint: pkilint's own expected findings for its test precertificates,
a real certificate, certificates built wrong on purpose with cryptography, bytes no decoder reads, and what
the test log's certificates show."""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ctsentinel.oversight.lint import UNDECODABLE, LintSeverity, lint_certificate
from ctsentinel.testlog.populate import populate
from testlog_populated import read_log

DATA = Path(__file__).parent / "data" / "certs" / "corpus"
CRTTESTS = sorted((DATA / "pkilint-tls-precerts").glob("*.crttest"))


def _crttest(path: Path) -> tuple[bytes, list[dict[str, str]]]:
    text = path.read_text()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    der = x509.load_pem_x509_certificate(text[:end].encode()).public_bytes(serialization.Encoding.DER)
    return der, list(csv.DictReader(io.StringIO(text[end:].strip())))


@pytest.mark.parametrize("path", CRTTESTS, ids=lambda p: p.stem)
def test_pkilints_own_test_precertificates_give_its_expected_findings(path: Path) -> None:
    der, expected = _crttest(path)
    report = lint_certificate(der, at_least=LintSeverity.INFO)
    # The folder names the profile pkilint's tests hold the precertificate to; detection must agree.
    assert report.profile == path.stem.split("__")[0].replace("_", "-")
    assert sorted((f.severity.value, f.code, f.where) for f in report.findings) == sorted(
        (row["severity"].lower(), row["code"], row["node_path"]) for row in expected
    )
    messages = {(row["code"], row["node_path"]): row["message"] or None for row in expected}
    assert {(f.code, f.where): f.message for f in report.findings} == messages
    assert report.error_codes == tuple(sorted({r["code"] for r in expected if r["severity"] == "ERROR"}))


def test_a_real_certificate() -> None:
    pem = (DATA / "cryptography_vectors" / "cryptography.io.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    report = lint_certificate(cert.public_bytes(serialization.Encoding.DER))
    assert report.profile == "dv-final-certificate"
    assert report.error_codes == (
        "cabf.serverauth.certificate_validity_period_exceeds_398_days",
        "cabf.serverauth.dv.unknown_attribute_present",
        "cabf.serverauth.prohibited_duplicate_attribute_type",
        "cabf.serverauth.subscriber_missing_reserved_policy_oid",
    )
    (long,) = [f for f in report.errors if f.code.endswith("exceeds_398_days")]
    assert long.message == "Validity period of 1492 days, 13:05:32 exceeds maximum value of 398 days, 0:00:00"
    assert long.where == "certificate.tbsCertificate.validity.notBefore"
    assert {f.severity for f in report.findings} == {LintSeverity.ERROR, LintSeverity.WARNING}
    assert lint_certificate(cert.public_bytes(serialization.Encoding.DER), at_least=LintSeverity.ERROR) == (
        type(report)(report.profile, report.errors))


# --- built wrong on purpose ---------------------------------------------------------------------------------

CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Oversight Lint CA Org"),
    x509.NameAttribute(NameOID.COMMON_NAME, "Oversight Lint CA"),
])


def leaf(*, cn: str | None = None, dns: Sequence[str] = ("www.example.com",), ips: Sequence[str] = (),
         days: int = 90, poison: bool = False) -> bytes:
    """A DV certificate as the Baseline Requirements want it, but for what the arguments change."""
    key = ec.generate_private_key(ec.SECP256R1())
    not_before = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(CA_NAME).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days, seconds=-1))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(CA_KEY.public_key()), False)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), False)
        .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier("http://ca.example.com/ca.crt"))]), False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.example.com/ca.crl")], None, None, None)]), False)
        # RFC 5280: the SAN is critical when the subject is empty.
        .add_extension(x509.SubjectAlternativeName(names), critical=not cn)
    )
    if poison:
        builder = builder.add_extension(x509.PrecertPoison(), True)
    return builder.sign(CA_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_a_certificate_built_right_has_no_errors() -> None:
    final, precert = lint_certificate(leaf()), lint_certificate(leaf(poison=True))
    assert (final.profile, final.findings) == ("dv-final-certificate", ())
    assert (precert.profile, precert.findings) == ("dv-pre-certificate", ())
    assert lint_certificate(leaf(dns=(), ips=("1.1.1.1",))).findings == ()


@pytest.mark.parametrize(
    ("case", "kwargs", "codes"),
    [
        ("validity of 399 days", {"days": 399},
         ["cabf.serverauth.certificate_validity_period_exceeds_398_days"]),
        ("validity of 398 days is allowed", {"days": 398}, []),
        ("internal name", {"dns": ("intranet", "www.example.com")}, ["cabf.internal_domain_name"]),
        ("wildcard under no TLD", {"dns": ("*.corp",)}, ["cabf.internal_domain_name"]),
        ("reserved address", {"dns": (), "ips": ("10.1.10.10",)}, ["cabf.internal_ip_address"]),
        ("IP address in the CN only", {"cn": "203.0.114.9"},
         ["cabf.serverauth.subscriber_common_name_unknown_source"]),
        ("precertificate with an internal name", {"dns": ("rdctest",), "poison": True},
         ["cabf.internal_domain_name"]),
    ],
)
def test_certificates_built_wrong_on_purpose(case: str, kwargs: dict[str, object], codes: list[str]) -> None:
    report = lint_certificate(leaf(**kwargs))  # type: ignore[arg-type]
    assert list(report.error_codes) == codes, (case, report.findings)


@pytest.mark.parametrize(
    "der", [b"", b"garbage", b"\x30\x03\x02\x01\x01", leaf()[:-7]], ids=["empty", "text", "int", "cut"]
)
def test_bytes_no_decoder_reads_are_one_fatal_finding(der: bytes) -> None:
    report = lint_certificate(der)
    (finding,) = report.findings
    assert report.profile == "undecodable"
    assert (finding.severity, finding.code) == (LintSeverity.FATAL, UNDECODABLE)
    assert report.error_codes == (UNDECODABLE,) and finding.message and "\n" not in finding.message


# --- the test log -------------------------------------------------------------------------------------------


def test_the_test_logs_certificates(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    populate(directory, entries=200, scenario="fina-1.1.1.1", seed=6)
    _, _, entries = read_log(directory)
    profiles = set()
    for entry in entries[::7]:
        report = lint_certificate(entry.der)
        profiles.add(report.profile)
        # What its subject names is clean; its CRL and OCSP URLs name 127.0.0.1, which the Baseline
        # Requirements call an internal name: the price of a repository on the loopback interface.
        for finding in report.errors:
            loopback = finding.message == 'Internal domain name: "127.0.0.1"'
            if finding.code == "cabf.internal_domain_name" and loopback:
                assert "uniformResourceIdentifier" in finding.where
            else:
                assert finding.code == "cabf.internal_ip_address" and entry.ips, (entry.index, finding)
    assert {"dv-pre-certificate", "dv-final-certificate", "ov-pre-certificate"} <= profiles
