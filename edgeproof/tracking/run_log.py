"""Log one target's outcome to MLflow: a target run and a nested run per candidate.

Candidate runs carry the recipe as params; accuracy, fidelity, latency (with CI bounds),
throughput, memory and size as metrics; and as artifacts the model file(s), the raw
measurement samples, the verdict and the evidence bundle (``evidence.json``: hashes of the
model, data and params, environment, measurements, verdict), so any number in a report can be
traced to its data.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from edgeproof.measure.fingerprint import HARDWARE_FIELDS, fingerprint_digest
from edgeproof.records import CandidateOutcome, CandidateSummary, Estimate, TargetOutcome
from edgeproof.records.measurement import TargetMeasurements
from edgeproof.tasks.registry import find_task_kind
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.datasets import data_inputs
from edgeproof.tracking.evidence import (
    EVIDENCE_FILE,
    EvidenceContext,
    build_evidence,
    evidence_json,
    measurement_record,
)
from edgeproof.tracking.mlflow_model import write_mlmodel
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.signing import SIGNATURE_FILE, signature_json

MODEL_ARTIFACT_DIR = "model"
PLOTS_DIR = "plots"
TARGET_OUTCOME_FILE = "target_outcome.json"  # the outcome, read back by the parent run


def summary_metrics(summary: CandidateSummary) -> dict[str, float | None]:
    """Flat MLflow metrics of a summary; an estimate adds ``_low`` and ``_high``."""
    metrics: dict[str, float | None] = {}
    estimates: dict[str, Estimate | None] = {
        "accuracy": summary.accuracy,
        "accuracy_drop": summary.accuracy_drop,
        "top1_agreement": summary.top1_agreement,
        "mean_kl": summary.mean_kl,
        "latency_p50_ms": summary.median_ms,
        "latency_p90_ms": summary.p90_ms,
        "latency_p99_ms": summary.p99_ms,
        "speedup": summary.speedup,
        "throughput_ips": summary.throughput_ips,
    }
    estimates |= {"mae": summary.mae, "mae_increase": summary.mae_increase}
    for out in summary.outputs:
        key = "fidelity." + re.sub(r"[^A-Za-z0-9_.-]", "_", out.output)
        estimates |= {
            f"{key}.cosine_mean": out.cosine_mean,
            f"{key}.cosine_low": out.cosine_low,
            f"{key}.rel_l2_mean": out.rel_l2_mean,
            f"{key}.knn_agreement": out.knn_agreement,
        }
        metrics[f"{key}.max_abs_error"] = out.max_abs_error
    if summary.metric is not None:
        estimates |= {
            "metric": summary.metric.value,
            "metric_drop": summary.metric.drop,
            "metric_worst_slice_drop": summary.metric.worst_slice_drop,
        }
    estimates |= summary.figures  # a task kind's own sampled figures
    kind = find_task_kind(summary.task) if summary.task else None
    for key, value in (kind.metrics(summary) if kind else {}).items():
        if isinstance(value, Estimate):
            estimates[key] = value
        else:
            metrics[key] = value
    for key, est in estimates.items():
        if est is not None:
            metrics.update({key: est.value, f"{key}_low": est.low, f"{key}_high": est.high})
    metrics.update(
        {
            "max_abs_logit_error": summary.max_abs_logit_error,
            "latency_samples": summary.latency_samples,
            "peak_rss_mb": summary.peak_rss_mb,
            "load_rss_mb": summary.load_rss_mb,
            "load_seconds": summary.load_seconds,
            "size_mb": summary.size_mb,
            "threads": summary.threads,
            "eval_items": summary.n_eval_items,
        }
    )
    return metrics


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


def log_target(
    store: MlflowStore,
    experiment_id: str,
    parent_run_id: str,
    outcome: TargetOutcome,
    measured: TargetMeasurements | None,
    evidence: EvidenceContext,
    plot_dir: Path | None = None,
) -> tuple[str, dict[str, str]]:
    """Create the target run and its candidate runs: (target run id, candidate -> run id)."""
    target_run = store.start_run(
        experiment_id,
        outcome.target,
        parent_id=parent_run_id,
        tags={tagnames.LEVEL: tagnames.TARGET_LEVEL, tagnames.TARGET: outcome.target},
        key=f"{parent_run_id}/{outcome.target}",  # a retried track task: the same runs
    )
    try:
        run_ids = _log_target_body(
            store, experiment_id, target_run, outcome, measured, evidence, plot_dir
        )
    except BaseException:
        end_failed(store, target_run)  # never left RUNNING; the error goes on up
        raise
    return target_run, run_ids


def end_failed(store: MlflowStore, run_id: str) -> None:
    """End ``run_id`` FAILED after an error while logging it (best effort: the store may be
    what failed)."""
    with contextlib.suppress(Exception):  # the original error is the one reported
        store.end(run_id, "FAILED")


def _log_target_body(
    store: MlflowStore,
    experiment_id: str,
    target_run: str,
    outcome: TargetOutcome,
    measured: TargetMeasurements | None,
    evidence: EvidenceContext,
    plot_dir: Path | None,
) -> dict[str, str]:
    run_ids: dict[str, str] = {}
    datasets = data_inputs(evidence.root, evidence.data_files)
    for cand in outcome.outcomes:
        run_ids[cand.candidate.name] = _log_candidate(
            store, experiment_id, target_run, outcome, cand, measured, evidence, datasets
        )
    metrics: dict[str, float | None] = {"candidates": len(outcome.outcomes)}
    tags = {tagnames.STATUS: outcome.status, tagnames.REASON: outcome.reason or ""}
    versus = outcome.champion
    if versus is not None:
        tags.update(
            {
                tagnames.CHAMPION_VERSION: versus.champion_version,
                tagnames.CHAMPION_COMPARISON: versus.status,
                tagnames.CHAMPION_REASON: versus.reason[:5000],
            }
        )
        if versus.summary is not None:
            metrics.update(
                {f"vs_champion.{k}": v for k, v in summary_metrics(versus.summary).items()}
            )
    store.log(
        target_run,
        params={"baseline": outcome.baseline, "winner": outcome.winner or "none"},
        metrics=metrics,
        tags=tags,
    )
    store.log_text(target_run, outcome.model_dump_json(indent=2), TARGET_OUTCOME_FILE)
    for name in outcome.plots:
        if plot_dir is not None and (plot_dir / name).is_file():
            store.log_artifact(target_run, plot_dir / name, PLOTS_DIR)
    store.end(target_run, "FINISHED" if outcome.status != "error" else "FAILED")
    return run_ids


def device_tags(environment: dict[str, Any]) -> dict[str, str]:
    """Which device measured a candidate: its hardware digest (the same for every runtime
    measured on it, so targets can be compared per device), CPU model, and the board's own
    id where readable (two boards of one pool told apart)."""
    fingerprint = environment.get("fingerprint") or {}
    if not fingerprint:
        return {}
    tags = {
        tagnames.DEVICE: fingerprint_digest(fingerprint, HARDWARE_FIELDS),
        tagnames.DEVICE_NAME: str(fingerprint.get("cpu_model", "unknown"))[:250],
    }
    if fingerprint.get("device_id"):
        tags[tagnames.DEVICE_ID] = str(fingerprint["device_id"])
    return tags


def _log_candidate(
    store: MlflowStore,
    experiment_id: str,
    target_run: str,
    outcome: TargetOutcome,
    cand: CandidateOutcome,
    measured: TargetMeasurements | None,
    evidence: EvidenceContext,
    datasets: list[Any],
) -> str:
    name = cand.candidate.name
    run_id = store.start_run(
        experiment_id,
        f"{outcome.target}/{name}",
        parent_id=target_run,
        tags={
            tagnames.LEVEL: tagnames.CANDIDATE_LEVEL,
            tagnames.TARGET: outcome.target,
            tagnames.CANDIDATE: name,
            tagnames.VERDICT: cand.verdict.status,
            tagnames.BASELINE: str(cand.candidate.is_baseline).lower(),
            tagnames.WINNER: str(name == outcome.winner).lower(),
        },
        key=f"{target_run}/{name}",
    )
    try:
        _log_candidate_body(store, run_id, cand, measured, evidence, datasets)
    except BaseException:
        end_failed(store, run_id)
        raise
    return run_id


def _log_candidate_body(
    store: MlflowStore,
    run_id: str,
    cand: CandidateOutcome,
    measured: TargetMeasurements | None,
    evidence: EvidenceContext,
    datasets: list[Any],
) -> None:
    """The candidate run's params, metrics, model files, MLmodel, verdict and evidence; an
    error candidate (no files: its optimizer failed) logs its recipe, verdict and evidence."""
    name = cand.candidate.name
    raw = measured.raw.get(name) if measured else None
    store.log(
        run_id,
        params={"precision": cand.candidate.precision, **_flat("recipe", cand.candidate.recipe)},
        metrics=summary_metrics(cand.summary) if cand.summary else None,
        tags=device_tags(raw.environment) if raw else None,
    )
    store.log_inputs(run_id, datasets)
    with tempfile.TemporaryDirectory(prefix="edgeproof-mlmodel-") as scratch:
        extra: list[Path] = []
        has_model = cand.candidate.has_files and cand.candidate.model_file.is_file()
        if evidence.serving is not None and has_model and cand.verdict.status != "error":
            extra = write_mlmodel(cand.candidate, evidence.serving, Path(scratch))
        for path in (*cand.candidate.files, *extra):
            if path.exists():
                store.log_artifact(run_id, path, MODEL_ARTIFACT_DIR)
        bundle = build_evidence(evidence, cand, raw, MODEL_ARTIFACT_DIR, extra)
    if raw is not None:
        store.log_text(run_id, json.dumps(measurement_record(raw)), "measurements/samples.json")
    store.log_text(run_id, cand.model_dump_json(indent=2), "verdict.json")
    text = evidence_json(bundle)
    store.log_text(run_id, text, EVIDENCE_FILE)
    if evidence.signing_key is not None:
        store.log_text(run_id, signature_json(text, evidence.signing_key), SIGNATURE_FILE)
    store.end(run_id, "FAILED" if cand.verdict.status == "error" else "FINISHED")
