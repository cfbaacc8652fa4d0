"""Signed evidence end to end on the stack: log_target signs, promote registers, a device
(the ``reviewer`` identity: READ) pulls the champion; tampering or a wrong key is refused
with exit 1 and the out folder untouched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeproof.tracking.evidence import EVIDENCE_FILE
from edgeproof.tracking.signing import SIGNATURE_FILE
from tests.helpers import BIN, Published, public_b64, publish
from tests.helpers import SIGNED_TARGET as TARGET
from tests.integration.stack.conftest import RunningStack


def edgeproof_pull(
    stack: RunningStack, tmp_path: Path, published: Published, out: Path, public: str
) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "edgeproof"), "pull", "--target", TARGET, "--model", published.model]
    command += ["--out", str(out), "--public-key", public, "--params", str(published.params)]
    return subprocess.run(
        command,
        env=stack.client_env(tmp_path, "reviewer"),  # a device: READ only
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def published(
    stack: RunningStack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_model: Path,
    tiny_data: dict[str, Path],
) -> Published:
    store = stack.store("ci", monkeypatch)
    return publish(store, tmp_path / "project", tiny_model, tiny_data, Ed25519PrivateKey.generate())


def test_a_signed_champion_is_pulled_and_checks_out(
    stack: RunningStack, published: Published, tmp_path: Path
) -> None:
    out = tmp_path / "device" / "model"
    out.parent.mkdir()
    done = edgeproof_pull(stack, tmp_path, published, out, public_b64(published.key))
    assert done.returncode == 0, done.stderr
    assert f"pulled {published.model}.{TARGET} v{published.version} (@champion" in done.stdout
    for name, data in published.model_files.items():
        assert (out / "model" / name).read_bytes() == data
    record = json.loads((out / "pull.json").read_text())
    assert record["run_id"] == published.run_id and record["version"] == published.version
    assert (out / EVIDENCE_FILE).is_file() and (out / SIGNATURE_FILE).is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["model"]  # no temp folder left

    verified = subprocess.run(
        [
            *(str(BIN / "edgeproof"), "verify-signature", str(out / EVIDENCE_FILE)),
            *("--public-key", public_b64(published.key)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0 and "signature ok" in verified.stdout, verified.stderr

    again = edgeproof_pull(stack, tmp_path, published, out, public_b64(published.key))
    assert again.returncode == 2 and "not an empty folder" in again.stderr


def _refused(done: subprocess.CompletedProcess[str], out: Path, why: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeproof: refused: "), lines
    assert why in lines[0], lines[0]
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
    assert list(out.iterdir()) == []


@pytest.mark.slow  # three refused pulls, each a CLI process (about 35 s)
def test_a_wrong_key_a_tampered_file_or_evidence_is_refused(
    stack: RunningStack,
    published: Published,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    out = tmp_path / "device" / "model"
    out.mkdir(parents=True)  # an existing empty folder must stay empty
    wrong = public_b64(Ed25519PrivateKey.generate())
    _refused(edgeproof_pull(stack, tmp_path, published, out, wrong), out, "not by the trusted key")

    ci = stack.store("ci", monkeypatch)
    scratch = tmp_path / "scratch"
    tampered = ci.download(published.run_id, "model", scratch)
    (tampered / "tiny.onnx.data").write_bytes(b"external weights, changed")
    ci.log_artifact(published.run_id, tampered / "tiny.onnx.data", "model")
    right = public_b64(published.key)
    done = edgeproof_pull(stack, tmp_path, published, out, right)
    _refused(done, out, "model/tiny.onnx.data: sha256 differs from the evidence")

    # evidence rewritten to match the tampered file: its signature no longer matches
    evidence_path = ci.download(published.run_id, EVIDENCE_FILE, scratch)
    evidence = json.loads(evidence_path.read_text())
    from edgeproof.tracking.evidence import sha256_file

    for item in evidence["model_files"]:
        if item["artifact"].endswith(".data"):
            item["sha256"] = sha256_file(tampered / "tiny.onnx.data")
            item["size_bytes"] = (tampered / "tiny.onnx.data").stat().st_size
    evidence_path.write_text(json.dumps(evidence))
    ci.log_artifact(published.run_id, evidence_path)
    done = edgeproof_pull(stack, tmp_path, published, out, right)
    _refused(done, out, "does not match the evidence")


def test_an_unsigned_champion_is_refused(
    stack: RunningStack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_model: Path,
    tiny_data: dict[str, Path],
) -> None:
    store = stack.store("ci", monkeypatch)
    unsigned = publish(store, tmp_path / "project", tiny_model, tiny_data, None)
    out = tmp_path / "device" / "model"
    out.parent.mkdir()
    done = edgeproof_pull(stack, tmp_path, unsigned, out, public_b64(unsigned.key))
    assert done.returncode == 1 and "is not signed" in done.stderr, done.stderr
    assert list(out.parent.iterdir()) == []
