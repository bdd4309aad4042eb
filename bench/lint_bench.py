"""pkilint's cost per certificate, beside the CertRecord decode every certificate already pays.

Run: .venv/bin/python bench/lint_bench.py [--entries N]
Certificates: the (pre)certificates of a fresh fina-1.1.1.1 test log of N entries (what the monitor sees
there), pkilint's own 30 test precertificates (real ones from public logs), and cryptography.io's
certificate. "first" is the first certificate of each profile, which builds that profile's validators.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ctsentinel.certs.decode import record_from_der
from ctsentinel.ct.tls import LogEntryType, PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf
from ctsentinel.oversight.lint import lint_certificate
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.storage import LogStorage

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "certs" / "corpus"


def log_certificates(entries: int) -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "log"
        populate(directory, entries=entries, scenario="fina-1.1.1.1", seed=1)
        with LogStorage.open(directory) as storage:
            raw = storage.get_entries(0, storage.tree_size - 1)
    out = []
    for leaf_input, extra in raw:
        entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
        if entry.entry_type == LogEntryType.PRECERT_ENTRY:
            parsed = decode_extra_data(entry.entry_type, extra)
            assert isinstance(parsed, PrecertExtraData)
            out.append(parsed.pre_certificate)
        else:
            out.append(entry.signed_entry)
    return out


def corpus_certificates() -> list[bytes]:
    out = []
    for path in sorted((CORPUS / "pkilint-tls-precerts").glob("*.crttest")):
        text = path.read_text()
        pem = text[: text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
        out.append(x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER))
    return out


def timings_ms(function: Callable[[bytes], object], certificates: Sequence[bytes]) -> list[float]:
    out = []
    for der in certificates:
        started = time.perf_counter()
        function(der)
        out.append((time.perf_counter() - started) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1000)
    args = parser.parse_args()
    log = log_certificates(args.entries)
    real = corpus_certificates()
    cryptography_io = x509.load_pem_x509_certificate(
        (CORPUS / "cryptography_vectors" / "cryptography.io.pem").read_bytes()
    ).public_bytes(serialization.Encoding.DER)

    seen: dict[str, float] = {}
    for der in [*log, *real, cryptography_io]:
        started = time.perf_counter()
        profile = lint_certificate(der).profile
        if profile not in seen:
            seen[profile] = (time.perf_counter() - started) * 1e3
    print("first certificate of each profile (builds its validators), ms: " +
          ", ".join(f"{p} {ms:.0f}" for p, ms in sorted(seen.items())))
    print(f"{'':44} {'median ms':>10} {'mean ms':>8} {'p95 ms':>7}")
    rows = [
        (f"lint: test log (pre)certificates ({len(log)})", timings_ms(lint_certificate, log)),
        (f"lint: pkilint's real test precertificates ({len(real)})", timings_ms(lint_certificate, real)),
        ("lint: cryptography.io (x20)", timings_ms(lint_certificate, [cryptography_io] * 20)),
        (f"baseline: CertRecord decode, test log ({len(log)})", timings_ms(record_from_der, log)),
    ]
    for label, values in rows:
        ordered = sorted(values)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        print(f"{label:44} {statistics.median(values):>10.3f} {statistics.fmean(values):>8.3f} {p95:>7.3f}")


if __name__ == "__main__":
    main()
