"""`testlog populate` at scale: time, entries/s, disk and peak memory, beside a naive baseline.

    .venv/bin/python bench/populate_bench.py [--entries N] [--scenario NAME] [--workers W] [--dir DIR]

Populates N entries (default 1,000,000, scenario fina-1.1.1.1) into a temporary directory (or DIR, kept).
The baseline, measured in the same run on a small sample and extrapolated to N, is the obvious way to do
it: one certificate at a time through cryptography's CertificateBuilder with a fresh subscriber key, each
precertificate submitted on its own and given a real SCT by the log, the final certificate built again
through the builder with that SCT, one storage transaction per entry, one process. (It builds four
extensions where populate builds ten, which flatters it slightly.)
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID

from ctsentinel.ct.tls import encode_sct_list
from ctsentinel.testlog.ca import CAHierarchy
from ctsentinel.testlog.names import NameGenerator
from ctsentinel.testlog.populate import disk_usage, populate
from ctsentinel.testlog.storage import LogStorage, Submission
from ctsentinel.testlog.traffic import PROFILES


def _der_octet_string(data: bytes) -> bytes:
    n = len(data)
    length = (
        bytes((n,))
        if n < 0x80
        else bytes((0x80 | ((n.bit_length() + 7) // 8),)) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return b"\x04" + length + data


def baseline(directory: Path, sample: int) -> tuple[float, float]:
    """(wall, CPU) seconds per entry of the naive path (a precertificate and its certificate are two)."""
    hierarchy = CAHierarchy.load_or_create(directory, seed=1)
    rng = random.Random(1)
    names = NameGenerator(rng)
    profiles = list(PROFILES)
    weights = [p.weight for p in profiles]
    with LogStorage.open(directory) as storage:
        start, cpu_start = time.perf_counter(), time.process_time()
        done = 0
        while done < sample:
            profile = rng.choices(profiles, weights)[0]
            ca = hierarchy[profile.ca_id]
            ids = names.draw()
            key = ec.generate_private_key(ec.SECP256R1())
            not_before = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(minutes=done)
            general: list[x509.GeneralName] = [x509.DNSName(n) for n in ids.dns_names]
            general += [x509.IPAddress(ip) for ip in ids.ips]
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ids.common_name)]))
                .issuer_name(ca.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before)
                .not_valid_after(not_before + profile.validity)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
                )
                .add_extension(x509.SubjectAlternativeName(general), critical=False)
            )
            chain = hierarchy.chain(ca.id)
            precert = builder.add_extension(x509.PrecertPoison(), critical=True).sign(ca.key, hashes.SHA256())
            precert_der = precert.public_bytes(encoding=Encoding.DER)
            (sct,) = storage.add([Submission((precert_der, *chain), True)])
            assert sct is not None
            sct_ext = x509.UnrecognizedExtension(
                ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, _der_octet_string(encode_sct_list([sct]))
            )
            final = builder.add_extension(sct_ext, critical=False).sign(ca.key, hashes.SHA256())
            storage.add([Submission((final.public_bytes(encoding=Encoding.DER), *chain), False)])
            done += 2
        storage.integrate()
        return (time.perf_counter() - start) / done, (time.process_time() - cpu_start) / done


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--scenario", default="fina-1.1.1.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=None, help="generator processes (default: one per CPU)"
    )
    parser.add_argument("--baseline-sample", type=int, default=400, help="entries the baseline really makes")
    parser.add_argument("--dir", help="populate here and keep it (default: a temporary directory, removed)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="populate-bench-"))
    try:
        per_entry, cpu_per_entry = baseline(scratch / "baseline", args.baseline_sample)
        print(
            f"baseline (naive CertificateBuilder, one entry at a time, {args.baseline_sample} entries): "
            f"{per_entry * 1e6:,.0f} us/entry wall clock = {1 / per_entry:,.0f} entries/s, "
            f"{cpu_per_entry * 1e6:,.0f} us/entry CPU; "
            f"{args.entries:,} entries would take {per_entry * args.entries / 60:,.1f} min"
        )
        directory = Path(args.dir) if args.dir else scratch / "log"
        cpu_before = sum(
            u.ru_utime + u.ru_stime
            for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
        )
        load_before = os.getloadavg()[0]
        report = populate(
            directory, entries=args.entries, scenario=args.scenario, seed=args.seed, workers=args.workers
        )
        usage_self = resource.getrusage(resource.RUSAGE_SELF)
        usage_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        parent_rss = usage_self.ru_maxrss * 1024
        child_rss = usage_children.ru_maxrss * 1024
        cpu = sum(u.ru_utime + u.ru_stime for u in (usage_self, usage_children)) - cpu_before
        disk = disk_usage(directory)
        print(report.summary())
        print(
            f"populate: {report.entries_added:,} entries in {report.seconds:,.1f} s "
            f"({report.seconds / 60:,.1f} min, {report.entries_per_second:,.0f} entries/s, "
            f"{report.workers} worker process(es)); "
            f"{report.seconds / report.entries_added * 1e6:,.0f} us/entry wall clock"
        )
        print(f"disk: {_mb(disk)} ({disk / max(report.tree_size, 1):,.0f} bytes/entry) in {directory}")
        print(f"peak RSS: parent {_mb(parent_rss)}, largest worker {_mb(child_rss)}")
        # Wall-clock time depends on what else the machine runs; CPU time does not.
        cores = os.cpu_count() or 1
        print(
            f"CPU: {cpu:,.0f} s in all processes ({cpu / report.entries_added * 1e6:,.0f} us/entry); "
            f"on {cores} otherwise idle core(s) at least {cpu / cores / 60:,.1f} min; "
            f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
        print(
            f"speed-up over the baseline: {per_entry * report.entries_per_second:,.1f}x wall clock, "
            f"{cpu_per_entry / (cpu / report.entries_added):,.1f}x in CPU per entry"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
