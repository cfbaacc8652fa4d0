"""The evidence bundle of one verdict: what was judged, where, on what numbers.

``evidence.json`` (logged to each candidate run) holds the sha256 of the candidate's model
files, of the eval and calibration data and of params.yaml; the lineage (git, DVC); the
environment (CPU, load, runtime and package versions); the raw measurements; the summary
with its confidence intervals; and the verdict. ``verify_evidence`` re-hashes the files so
anyone can check that a registered model is the one that was gated, on the data named.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeproof.records import CandidateOutcome, Lineage, RawMeasurement
from edgeproof.tracking.lineage import file_digest, project_relative
from edgeproof.tracking.mlflow_model import ServingContext

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SCHEMA = "edgeproof.evidence/1"
EVIDENCE_FILE = "evidence.json"
_PACKAGES = ("edgeproof", "onnxruntime", "onnx", "numpy", "scipy", "mlflow", "prefect")


@dataclass(frozen=True)
class EvidenceContext:
    """What a target's evidence shares: the run, its lineage and its input files."""

    pipeline_run_id: str
    target: str
    lineage: Lineage
    root: Path
    params_file: Path
    eval_data: Path
    calibration_data: Path
    signing_key: Ed25519PrivateKey | None = None  # sign each evidence.json when given
    serving: ServingContext | None = None  # log each candidate as an MLflow Model when given

    @property
    def data_files(self) -> dict[str, Path]:
        """The data by role: what the candidates were scored and calibrated on."""
        return {"eval": self.eval_data, "calibration": self.calibration_data}


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


def _packages() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def measurement_record(raw: RawMeasurement) -> dict[str, Any]:
    """The raw samples of one candidate as JSON-ready values (also ``samples.json``)."""
    return {
        "latency_ms": raw.latency_ms.tolist(),
        "paired_baseline_ms": raw.paired_baseline_ms.tolist(),
        "block_size": raw.block_size,
        "throughput_batch": raw.throughput_batch,
        "throughput_s": raw.throughput_s.tolist(),
        "environment": raw.environment,
    }


def build_evidence(
    context: EvidenceContext,
    outcome: CandidateOutcome,
    raw: RawMeasurement | None,
    model_artifact_dir: str,
    extra_files: Sequence[Path] = (),
) -> dict[str, Any]:
    """The evidence of one candidate's verdict, as JSON-ready values. ``extra_files``:
    logged beside the model files (the ``MLmodel``), hashed like them."""
    root = context.root
    model_files = [
        {
            "artifact": f"{model_artifact_dir}/{path.name}",
            "size_bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        for path in (*outcome.candidate.files, *extra_files)
        if path.is_file()
    ]
    inputs = {
        key: {"path": project_relative(path, root), "sha256": sha256_file(path)}
        for key, path in (
            ("params", context.params_file),
            ("eval_data", context.eval_data),
            ("calibration_data", context.calibration_data),
        )
    }
    return {
        "schema": SCHEMA,
        "pipeline_run_id": context.pipeline_run_id,
        "target": context.target,
        "candidate": outcome.candidate.name,
        "recipe": outcome.candidate.recipe,
        "model_files": model_files,
        "inputs": inputs,
        "lineage": context.lineage.model_dump(mode="json"),
        "packages": _packages(),
        "environment": raw.environment if raw else None,
        "measurements": measurement_record(raw) if raw else None,
        "summary": outcome.summary.model_dump(mode="json") if outcome.summary else None,
        "verdict": outcome.verdict.model_dump(mode="json"),
    }


def evidence_json(evidence: dict[str, Any]) -> str:
    return json.dumps(evidence, indent=1, sort_keys=True) + "\n"


@dataclass(frozen=True)
class FileCheck:
    """One re-hashed file: ``ok`` when present and its sha256 matches the evidence."""

    what: str
    path: str
    expected: str
    actual: str | None  # None: not found

    @property
    def ok(self) -> bool:
        return self.actual == self.expected

    def line(self) -> str:
        if self.actual is None:
            return f"MISSING   {self.what}: {self.path} (expected sha256 {self.expected[:12]}…)"
        if not self.ok:
            return (
                f"MISMATCH  {self.what}: {self.path} sha256 {self.actual[:12]}… "
                f"!= evidence {self.expected[:12]}…"
            )
        return f"ok        {self.what}: {self.path} sha256 {self.actual[:12]}…"


def verify_evidence(evidence: dict[str, Any], root: Path, model_dir: Path) -> list[FileCheck]:
    """Re-hash the model files (in ``model_dir``) and the inputs (under ``root``)."""
    if evidence.get("schema") != SCHEMA:
        raise ValueError(f"not an edgeproof evidence file (schema {evidence.get('schema')!r})")
    checks = []
    for item in evidence["model_files"]:
        path = model_dir / Path(item["artifact"]).name
        actual = sha256_file(path) if path.is_file() else None
        checks.append(FileCheck("model", item["artifact"], item["sha256"], actual))
    for what, item in evidence["inputs"].items():
        path = Path(item["path"])
        path = path if path.is_absolute() else root / path
        actual = sha256_file(path) if path.is_file() else None
        checks.append(FileCheck(what, item["path"], item["sha256"], actual))
    return checks
