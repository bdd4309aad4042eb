"""`ctsentinel inspect` reproduces the verdicts of the ctdata quick map on real data (tests/data/inspect)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from ctsentinel.cli import main

DATA = Path(__file__).parent / "data" / "inspect"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["inspect", *[str(a) for a in args]])
    out, err = capsys.readouterr()
    return code, out, err


def d(name: str) -> str:
    return str(DATA / name)


def flipped(tmp_path: Path, name: str, mutate) -> str:  # type: ignore[no-untyped-def]
    obj = json.loads((DATA / name).read_text())
    mutate(obj)
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return str(path)


def flip_b64(value: str, index: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_sth_valid_ecdsa(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sth", d("get-sth_2741521.json"), "--key", d("google-pilot.pem"))
    assert code == 0, err
    report = json.loads(out)
    assert report["signature"] == "valid"
    assert report["tree_size"] == 2741521
    assert report["log_id"] == "pLkJkLQYWBSHuxOizGdwCjw1mAT5G9+443fNDsgN3BA="


def test_sth_valid_rsa(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sth", d("venafi_get-sth_1130.json"), "--key", d("venafi.pem"))
    assert code == 0, err
    assert json.loads(out)["signature"] == "valid"


def test_sth_bad_signature(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sth", d("get-sth_1979426.json"), "--key", d("google-pilot.pem"))
    assert code == 1
    assert json.loads(out)["signature"].startswith("invalid")
    assert err.count("\n") == 1 and "signature does not verify" in err


@pytest.mark.parametrize("field", ["sha256_root_hash", "tree_head_signature"])
def test_sth_flipped_byte_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path, field: str) -> None:
    index = 5 if field == "sha256_root_hash" else 20
    path = flipped(
        tmp_path, "get-sth_2741521.json", lambda o: o.__setitem__(field, flip_b64(o[field], index))
    )
    code, _, err = run(capsys, "sth", path, "--key", d("google-pilot.pem"))
    assert code == 1 and "does not verify" in err


def test_sth_wrong_key_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "sth", d("get-sth_2741521.json"), "--key", d("venafi.pem"))
    assert code == 1


def test_consistency_real_pilot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "consistency",
        d("get-sth_1979426.json"),
        d("get-sth_2741521.json"),
        d("get-sth-consistency_1979426_2741521.json"),
        "--key",
        d("google-pilot.pem"),
    )
    report = json.loads(out)
    # The quick map: the old head's signature is bad as quoted, but its root is consistent with the new one.
    assert report["consistency"] == "valid"
    assert report["new_signature"] == "valid"
    assert report["old_signature"].startswith("invalid")
    assert report["proof_length"] == 22
    assert code == 1 and "old tree head signature" in err


def test_consistency_tampered_proof(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    def mutate(obj: dict) -> None:  # type: ignore[type-arg]
        obj["consistency"][7] = flip_b64(obj["consistency"][7], 0)

    proof = flipped(tmp_path, "get-sth-consistency_1979426_2741521.json", mutate)
    code, out, _ = run(
        capsys,
        "consistency",
        d("get-sth_1979426.json"),
        d("get-sth_2741521.json"),
        proof,
        "--key",
        d("google-pilot.pem"),
    )
    assert code == 1
    assert json.loads(out)["consistency"].startswith("invalid")


def test_entries_pilot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "entries", d("get-entries_0_3.json"))
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 4
    assert records[0]["dns_names"][0] == "mail.google.com"
    assert all(r["precert"] is False and r["error"] is None for r in records)
    assert list(records[0]) == [
        "serial",
        "issuer",
        "issuer_spki_sha256",
        "subject",
        "subject_spki_sha256",
        "dns_names",
        "ip_addresses",
        "not_before",
        "not_after",
        "sha256",
        "tbs_sha256",
        "precert",
        "error",
    ]


def test_entries_precert(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "entries", d("ctgo-client-test_precert-entry.json"))
    assert code == 0
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["precert"] is True
    assert "sdfedsf.trust" in record["dns_names"]


def test_cert_decodes_and_flags_malformed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cert", d("www.google.com.pem"))
    assert code == 0
    assert "www.google.com" in json.loads(out.splitlines()[0])["dns_names"]
    # A truncated certificate still yields a record: what could be read, and a one-line error.
    code, out, _ = run(capsys, "cert", d("test-corrupted.pem"))
    assert code == 0
    record = json.loads(out.splitlines()[0])
    assert record["error"] and "\n" not in record["error"] and "truncated" in record["error"]
    assert record["issuer"] == "L=Erw Wen,ST=Wales,O=Certificate Transparency CA,C=GB"


def test_checkpoint_rome_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "checkpoint", d("rome2024h1.checkpoint"), "--key", d("rome2024h1.pem"))
    assert code == 0, err
    report = json.loads(out)
    assert report["tree_size"] == 115474666 and report["timestamp"] == 1711519390034


def test_checkpoint_sycamore_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "checkpoint", d("sycamore2026h1.checkpoint"), "--key", d("letsencrypt-sycamore2026h1.pem")
    )
    assert code == 1
    assert json.loads(out)["tree_size"] == 910004669
    assert "does not verify" in err


def test_checkpoint_ed25519_sumdb(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "checkpoint", d("sumdb.checkpoint"), "--key", d("sumdb.vkey"))
    assert code == 0, err
    tampered = tmp_path / "cp"
    tampered.write_bytes((DATA / "sumdb.checkpoint").read_bytes().replace(b"6476701", b"6476702"))
    code, _, _ = run(capsys, "checkpoint", str(tampered), "--key", d("sumdb.vkey"))
    assert code == 1


def test_tile_matches_hash_tile(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "tile", d("navigli_data_003.p10"), "--hash-tile", d("navigli_hash0_003.p10"))
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 10 and all(r["precert"] for r in records)
    bad = bytearray((DATA / "navigli_hash0_003.p10").read_bytes())
    bad[40] ^= 1
    (tmp_path / "h").write_bytes(bytes(bad))
    code, _, err = run(capsys, "tile", d("navigli_data_003.p10"), "--hash-tile", str(tmp_path / "h"))
    assert code == 1 and "entry 1" in err


def test_sct_real_pilot_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "sct",
        d("google-sct0.bin"),
        "--cert",
        d("google-cert.bin"),
        "--key",
        d("google-pilot-pubkey.bin"),
    )
    assert code == 0, err
    assert json.loads(out)["scts"][0]["signature"] == "valid"


def test_sct_real_symantec_bad(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        "sct",
        d("symantec-bad-sct.bin"),
        "--cert",
        d("www.google.com.pem"),
        "--key",
        d("symantec.pem"),
    )
    assert code == 1 and "does not verify" in err


def test_sct_embedded(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--issuer", d("ca-cert.pem"), "--embedded", "--key", d("ct-server-key-public.pem")]
    code, _, err = run(capsys, "sct", "--cert", d("test-embedded-cert.pem"), *args)
    assert code == 0, err
    code, _, _ = run(capsys, "sct", "--cert", d("test-invalid-embedded-cert.pem"), *args)
    assert code == 1


def test_loglist_ids(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "loglist", d("google-all_logs_list-v3_2026-08-21.json"))
    assert code == 0
    assert json.loads(out)["logs"] > 100


def test_unreadable_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "sth", str(tmp_path / "missing.json"), "--key", d("google-pilot.pem"))
    assert code == 1 and out == "" and err.count("\n") == 1
    (tmp_path / "junk.json").write_text('{"tree_size": "x"}')
    code, out, err = run(capsys, "sth", str(tmp_path / "junk.json"), "--key", d("google-pilot.pem"))
    assert code == 1 and out == "" and err.startswith("ctsentinel: ") and err.count("\n") == 1


def test_inclusion_against_a_served_log(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, testlog_factory: Any
) -> None:
    # No real get-entry-and-proof with its tree head exists in ctdata, so the test log serves one.
    from testlog_client import get_json, submit
    from testlog_pki import make_leaf, make_pki

    log = testlog_factory()
    pki = make_pki("Inspect")
    for number in range(5):
        submit(log.url, pki.chain(make_leaf(pki.intermediate, [f"h{number}.example"])))
    while get_json(f"{log.url}ct/v1/get-sth")["tree_size"] < 5:
        time.sleep(0.05)
    sth = tmp_path / "sth.json"
    sth.write_text(json.dumps(get_json(f"{log.url}ct/v1/get-sth")))
    key = tmp_path / "key.pem"
    listed = json.loads((log.directory / "log_list.json").read_text())["operators"][0]["logs"][0]["key"]
    key.write_text(f"-----BEGIN PUBLIC KEY-----\n{listed}\n-----END PUBLIC KEY-----\n")
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(get_json(f"{log.url}ct/v1/get-entry-and-proof?leaf_index=3&tree_size=5")))
    code, out, err = run(capsys, "inclusion", str(proof), str(sth), "--key", str(key), "--index", "3")
    assert code == 0, err
    report = json.loads(out)
    assert report["inclusion"] == "valid" and report["certificate"]["dns_names"] == ["h3.example"]
    # The same proof does not place the entry at another index.
    code, _, err = run(capsys, "inclusion", str(proof), str(sth), "--key", str(key), "--index", "2")
    assert code == 1 and "entry 2 is not included" in err
    # get-proof-by-hash plus the entry from get-entries.
    entry = tmp_path / "entry.json"
    entry.write_text(json.dumps(get_json(f"{log.url}ct/v1/get-entries?start=3&end=3")))
    leaf = base64.b64decode(json.loads(entry.read_text())["entries"][0]["leaf_input"])
    leaf_hash = base64.b64encode(hashlib.sha256(b"\0" + leaf).digest()).decode()
    by_hash = tmp_path / "by_hash.json"
    by_hash.write_text(json.dumps(get_json(
        f"{log.url}ct/v1/get-proof-by-hash?hash={urllib.parse.quote(leaf_hash)}&tree_size=5"
    )))  # fmt: skip
    code, out, err = run(
        capsys, "inclusion", str(by_hash), str(sth), "--key", str(key), "--entry", str(entry)
    )
    assert code == 0, err
    assert json.loads(out)["leaf_index"] == 3


def test_a_closed_pipe_is_not_a_traceback() -> None:
    # `ctsentinel inspect tile X | head -1`: 256 records overflow the pipe once the reader has gone.
    import subprocess
    import sys

    tile = Path(__file__).parent / "data" / "static-ct" / "sunlight-navigli2025h2" / "tile" / "data" / "000"
    child = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel", "inspect", "tile", str(tile)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline().startswith(b'{"serial"')
    child.stdout.close()
    assert child.wait(timeout=60) == 141
    assert b"Traceback" not in child.stderr.read()


def test_a_directory_that_cannot_be_made_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testlog", "serve", "--dir", "/proc/ctsentinel-cannot-be-here/log"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ctsentinel: ") and err.count("\n") == 1
    assert "/proc/ctsentinel-cannot-be-here" in err
