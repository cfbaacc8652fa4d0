"""Prefect flow ``gate-target``: one target, on the runner that has its hardware.

optimize -> measure -> evaluate + decide + select -> track. The parent flow
``quality-gate`` runs it in-process when embedded; as a deployment it runs on the target's
own work pool. It resolves its inputs itself (the runner has its own checkout) and returns
JSON: the target's outcome and the MLflow run id of each candidate.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from edgeproof.config import MeasureConfig
from edgeproof.errors import EdgeproofError
from edgeproof.judge import judge_target, latency_inconclusive
from edgeproof.measure.harness import MeasureJob, TargetMeasurements, extended, measure_target
from edgeproof.optimize import build_candidates
from edgeproof.records import Candidate, CandidateOutcome, TargetOutcome
from edgeproof.report.plots import latency_plot
from edgeproof.resolve import ResolvedInputs, resolve_inputs
from edgeproof.runtime_env import apply_quiet_defaults
from edgeproof.targets.registry import make_target
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.run_log import log_target


@task(name="optimize", cache_policy=NO_CACHE)
def optimize(
    inputs: ResolvedInputs, target_name: str, workdir: Path
) -> tuple[Candidate, list[Candidate], list[CandidateOutcome]]:
    target = make_target(target_name, inputs.targets[target_name])
    return build_candidates(
        target, inputs.model, inputs.load_calibration(), workdir, get_run_logger().info
    )


@task(name="measure", cache_policy=NO_CACHE, tags=["edgeproof-measure"])
def measure(
    inputs: ResolvedInputs,
    target_name: str,
    baseline: Candidate,
    candidates: list[Candidate],
    workdir: Path,
    settings: MeasureConfig | None = None,
) -> TargetMeasurements:
    section = inputs.targets[target_name]
    job = MeasureJob(
        target=target_name,
        target_config=section.model_dump(mode="json", by_alias=True),
        eval_data=inputs.eval_data,
        labels_key=inputs.params.data.labels_key,
        threads=section.threads,
        outputs_dir=workdir / "outputs",
    )
    settings = settings or inputs.params.measure
    return measure_target(baseline, candidates, job, settings, get_run_logger().info)


@task(name="decide", cache_policy=NO_CACHE)
def decide(
    inputs: ResolvedInputs,
    target_name: str,
    baseline: Candidate,
    candidates: list[Candidate],
    failed: list[CandidateOutcome],
    measured: TargetMeasurements,
) -> TargetOutcome:
    labels = inputs.load_eval().labels
    return judge_target(target_name, baseline, candidates, failed, measured, labels, inputs.params)


@task(name="track", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=3)
def track(
    inputs: ResolvedInputs,
    experiment_id: str,
    parent_run_id: str,
    outcome: TargetOutcome,
    measured: TargetMeasurements | None,
    plot_dir: Path,
) -> tuple[str, dict[str, str]]:
    store = MlflowStore(inputs.params.tracking)
    return log_target(store, experiment_id, parent_run_id, outcome, measured, plot_dir)


@task(name="plot", cache_policy=NO_CACHE)
def plot(
    inputs: ResolvedInputs, outcome: TargetOutcome, measured: TargetMeasurements, plot_dir: Path
) -> TargetOutcome:
    """Draw the latency figure; the outcome names it so the report can link it."""
    name = f"{outcome.target}-latency.png"
    drawn = latency_plot(
        outcome, measured, inputs.params.gates.latency.min_speedup, plot_dir / name
    )
    return outcome.model_copy(update={"plots": (name,)}) if drawn else outcome


def _unavailable_or_none(inputs: ResolvedInputs, target_name: str) -> TargetOutcome | None:
    availability = make_target(target_name, inputs.targets[target_name]).available()
    if availability.ok:
        return None
    return TargetOutcome(
        target=target_name, available=False, reason=availability.reason, status="unavailable"
    )


@flow(name="gate-target", log_prints=True)
def gate_target(
    params_file: str, target: str, experiment_id: str, parent_run_id: str
) -> dict[str, Any]:
    """Gate one target and log it under the parent MLflow run."""
    apply_quiet_defaults()
    inputs = resolve_inputs(Path(params_file), [target])
    outcome = _unavailable_or_none(inputs, target)
    measured: TargetMeasurements | None = None
    workdir = Path(tempfile.mkdtemp(prefix=f"edgeproof-{target}-"))
    try:
        if outcome is None:
            try:
                baseline, built, failed = optimize(inputs, target, workdir)
                measured = measure(inputs, target, baseline, built, workdir)
                outcome = decide(inputs, target, baseline, built, failed, measured)
                again = latency_inconclusive(outcome)
                if again and inputs.params.gates.on_inconclusive == "rerun":
                    get_run_logger().info("%s: measuring again, longer: %s", target, again)
                    longer = extended(inputs.params.measure)
                    retry = [c for c in built if c.name in again]
                    newer = measure(inputs, target, baseline, retry, workdir, longer)
                    measured = measured.replacing(newer, again)
                    outcome = decide(inputs, target, baseline, built, failed, measured)
            except EdgeproofError as exc:  # the baseline itself failed: this target errs
                outcome = TargetOutcome(
                    target=target, available=True, reason=str(exc), status="error"
                )
        if measured is not None and outcome.status != "error":
            outcome = plot(inputs, outcome, measured, workdir / "plots")
        target_run, runs = track(
            inputs, experiment_id, parent_run_id, outcome, measured, workdir / "plots"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "outcome": outcome.model_dump(mode="json"),
        "target_run": target_run,
        "candidate_runs": runs,
    }
