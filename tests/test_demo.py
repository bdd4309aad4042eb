"""`ctsentinel demo` end to end: a real test log on 127.0.0.1, the real monitor, alerts and a live entry."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def test_demo_alerts_the_twelve_fina_issuances_and_a_live_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ctsentinel", "demo", "--entries", "1500", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1,500 entries verified, decoded and matched" in out
    assert "4. 12 alert(s)" in out
    assert (
        len(re.findall(r"#\d+ CRITICAL unauthorized_issuer on watch cloudflare-dns: 1\.1\.1\.1", out)) == 12
    )
    assert out.count("issuer    CN=Fina RDC 2020,O=Financijska agencija,C=HR") == 12
    # The three serials reported publicly in September 2025 are among them.
    for serial in ("d3167efd77cad759000000005fc7c672", "f972552d6ac08828000000005fc86f4d",
                   "beb8ef1b1c6cff53000000005fc8cde5"):  # fmt: skip
        assert f"serial    {serial}" in out
    # The legitimate CA's certificates for the same names are not alerted.
    assert "3 issuance(s) by the authorized CA matched too" in out
    assert re.search(
        r"alert #13 \(unauthorized_issuer, critical\) .* after the entry reached a tree head", out
    )
    assert "13 alert(s) were delivered to the jsonl channel" in out
    delivered = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert len([event for event in delivered if "event" not in event]) == 13
    # Fina revoked the twelve: the owner hears of it once each.
    news = [event for event in delivered if event.get("event") == "revocation"]
    assert "(and 12 revocation event(s): their CA revoked them)" in out
    assert sorted(event["alert"]["id"] for event in news) == list(range(1, 13))
    # 6. The root program's view after the owner's: Fina's flagged issuances, lint, revocation, the report.
    assert "6. The root program's view:" in out and "has a [[ca_watch]] on CN=Fina RDC 2020" in out
    flagged = re.search(r"flagged: (\d+) \(ip_address (\d+)", out)
    assert flagged and int(flagged.group(1)) >= 12 and int(flagged.group(2)) >= 12
    revoked = int(re.search(r"revocation: revoked (\d+)", out).group(1))  # type: ignore[union-attr]
    assert revoked >= 12  # the twelve planted ones, revoked by Fina
    page = tmp_path / "root-program" / "fina-report.html"
    assert f"the CA report: {page}" in out and "<svg" in page.read_text()
    assert "export disallow --issuer sha256:" in out
    # It ends by pointing at the incident's web page.
    assert f"ctsentinel -c {tmp_path / 'ctsentinel.toml'} serve --port 8080" in out
    assert out.rstrip().splitlines()[-1].startswith("   then open http://127.0.0.1:8080/watches/cloudflare-dns")

