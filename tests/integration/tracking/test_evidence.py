"""Evidence bundles: hashes of what was judged, re-checked file by file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgeproof.records import Candidate, CandidateOutcome, Lineage, Verdict
from edgeproof.tracking.evidence import (
    SCHEMA,
    EvidenceContext,
    build_evidence,
    evidence_json,
    sha256_file,
    verify_evidence,
)


@pytest.fixture
def project(tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path]) -> EvidenceContext:
    (tmp_path / "data").mkdir()
    for split, src in tiny_data.items():
        shutil.copy(src, tmp_path / "data" / f"{split}.npz")
    (tmp_path / "params.yaml").write_text("model: {name: tiny}\n")
    lineage = Lineage(
        git_sha=None, git_branch=None, git_dirty=None, params_sha256="0" * 64, dvc_md5={}
    )
    return EvidenceContext(
        pipeline_run_id="parent",
        target="onnxruntime-cpu",
        lineage=lineage,
        root=tmp_path,
        params_file=tmp_path / "params.yaml",
        eval_data=tmp_path / "data" / "eval.npz",
        calibration_data=tmp_path / "data" / "calibration.npz",
    )


def _outcome(model: Path) -> CandidateOutcome:
    candidate = Candidate(
        target="onnxruntime-cpu", name="fp32", files=(model,), recipe={}, precision="fp32"
    )
    verdict = Verdict(candidate="fp32", status="pass", checks=(), reasons=())
    return CandidateOutcome(candidate=candidate, summary=None, verdict=verdict)


def test_evidence_hashes_match_until_a_file_changes(
    project: EvidenceContext, tiny_model: Path, tmp_path: Path
) -> None:
    bundle = build_evidence(project, _outcome(tiny_model), None, "model")
    evidence = json.loads(evidence_json(bundle))
    assert evidence["schema"] == SCHEMA
    assert evidence["inputs"]["eval_data"]["path"] == "data/eval.npz"
    assert evidence["model_files"][0]["sha256"] == sha256_file(tiny_model)
    assert evidence["verdict"]["status"] == "pass"
    assert evidence["packages"]["onnxruntime"]

    models = tmp_path / "downloaded"
    models.mkdir()
    shutil.copy(tiny_model, models / tiny_model.name)
    checks = verify_evidence(evidence, project.root, models)
    assert sorted(c.what for c in checks) == ["calibration_data", "eval_data", "model", "params"]
    assert all(c.ok for c in checks)

    with (project.root / "data" / "eval.npz").open("ab") as handle:
        handle.write(b"\0")
    (models / tiny_model.name).unlink()
    lines = {c.what: c.line() for c in verify_evidence(evidence, project.root, models)}
    assert lines["eval_data"].startswith("MISMATCH  eval_data: data/eval.npz sha256 ")
    assert lines["model"].startswith("MISSING   model: model/tiny.onnx")
    assert lines["params"].startswith("ok ")


def test_a_foreign_json_is_refused(project: EvidenceContext, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an edgeproof evidence file"):
        verify_evidence({"schema": "other"}, project.root, tmp_path)
