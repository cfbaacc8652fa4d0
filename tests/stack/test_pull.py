"""Signed evidence end to end on the stack: log_target signs, promote registers, a device
(the ``reviewer`` identity: READ) pulls the champion; tampering or a wrong key is refused
with exit 1 and the out folder untouched."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    Lineage,
    RunInfo,
    TargetOutcome,
    Verdict,
)
from edgeproof.tracking.evidence import EVIDENCE_FILE, EvidenceContext
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.promote import promote
from edgeproof.tracking.run_log import log_target
from edgeproof.tracking.signing import SIGNATURE_FILE, public_key_b64
from tests.example_project import BIN
from tests.stack.conftest import RunningStack
from tests.test_registry import REGISTRY

TARGET = "onnxruntime-cpu"


@dataclass
class Published:
    model: str
    run_id: str
    version: str
    key: Ed25519PrivateKey
    params: Path
    model_files: dict[str, bytes]


def _public(key: Ed25519PrivateKey) -> str:
    return public_key_b64(key.public_key())


def publish(
    store: MlflowStore,
    folder: Path,
    tiny_model: Path,
    tiny_data: dict[str, Path],
    key: Ed25519PrivateKey | None,
) -> Published:
    """A gated winner logged by ``log_target`` (signed with ``key``) and promoted."""
    model = f"pull{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    files = (shutil.copy(tiny_model, folder / "tiny.onnx"),)
    (folder / "tiny.onnx.data").write_bytes(b"external weights")  # a second model file
    files = (Path(files[0]), folder / "tiny.onnx.data")
    params = {
        "model": {"name": model, "path": "tiny.onnx"},
        "data": {"eval": str(tiny_data["eval"]), "calibration": str(tiny_data["calibration"])},
        "targets": {TARGET: {"recipes": [{"name": "dyn", "method": "dynamic"}]}},
    }
    params_file = folder / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    lineage = Lineage(
        git_sha=None, git_branch=None, git_dirty=None, params_sha256="0" * 64, dvc_md5={}
    )
    candidate = Candidate(target=TARGET, name="fp32", files=files, recipe={}, precision="fp32")
    verdict = Verdict(candidate="fp32", status="pass", checks=(), reasons=())
    outcome = TargetOutcome(
        target=TARGET,
        available=True,
        reason="fastest",
        baseline="fp32",
        outcomes=(CandidateOutcome(candidate=candidate, summary=None, verdict=verdict),),
        winner="fp32",
        status="pass",
    )
    experiment = store.experiment(model)
    parent = store.start_run(experiment, "pipeline")
    context = EvidenceContext(
        pipeline_run_id=parent,
        target=TARGET,
        lineage=lineage,
        root=folder,
        params_file=params_file,
        eval_data=tiny_data["eval"],
        calibration_data=tiny_data["calibration"],
        signing_key=key,
    )
    _, runs = log_target(store, experiment, parent, outcome, None, context)
    run = RunInfo(
        run_name=f"{model}-run",
        model=model,
        mlflow_run_id=parent,
        mlflow_experiment_id=experiment,
        tracking_uri=store.uri,
        started_at="2026-01-01T00:00:00+00:00",
        trigger="test",
        lineage=lineage,
    )
    promotion = promote(store, REGISTRY, run, outcome, runs, None)
    assert promotion.moved, promotion.reason
    assert promotion.version is not None
    return Published(
        model,
        runs["fp32"],
        promotion.version,
        key or Ed25519PrivateKey.generate(),
        params_file,
        {p.name: p.read_bytes() for p in files},
    )


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
    done = edgeproof_pull(stack, tmp_path, published, out, _public(published.key))
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
            *("--public-key", _public(published.key)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0 and "signature ok" in verified.stdout, verified.stderr

    again = edgeproof_pull(stack, tmp_path, published, out, _public(published.key))
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
    wrong = _public(Ed25519PrivateKey.generate())
    _refused(edgeproof_pull(stack, tmp_path, published, out, wrong), out, "not by the trusted key")

    ci = stack.store("ci", monkeypatch)
    scratch = tmp_path / "scratch"
    tampered = ci.download(published.run_id, "model", scratch)
    (tampered / "tiny.onnx.data").write_bytes(b"external weights, changed")
    ci.log_artifact(published.run_id, tampered / "tiny.onnx.data", "model")
    right = _public(published.key)
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
    done = edgeproof_pull(stack, tmp_path, unsigned, out, _public(unsigned.key))
    assert done.returncode == 1 and "is not signed" in done.stderr, done.stderr
    assert list(out.parent.iterdir()) == []
