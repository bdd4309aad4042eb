"""`ctsentinel demo` end to end: a real test log served on 127.0.0.1, read back and checked."""

from __future__ import annotations

import subprocess
import sys


def test_demo_finds_the_twelve_fina_issuances() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ctsentinel", "demo", "--entries", "1500"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "signature valid" in out and "hash to its root" in out
    assert "12 issuance(s) for watched names or addresses by an UNAUTHORIZED issuer" in out
    alerts = [line for line in out.splitlines() if "[ALERT unauthorized_issuer]" in line]
    assert len(alerts) == 12
    # The three serials reported publicly in September 2025 are among them.
    for serial in ("d3167efd77cad759000000005fc7c672", "f972552d6ac08828000000005fc86f4d",
                   "beb8ef1b1c6cff53000000005fc8cde5"):
        assert serial in out
    assert out.count("issuer:   CN=Fina RDC 2020,O=Financijska agencija,C=HR") == 12
    assert "by the authorized CA matched too and were not alerted" in out
