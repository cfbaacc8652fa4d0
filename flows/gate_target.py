"""Prefect flow ``gate-target``: one target, on the runner that has its hardware.

optimize -> measure -> evaluate + decide + select -> re-measure the current champion beside
the winner (a clear regression blocks promotion) -> track. The parent flow
``quality-gate`` runs it in-process when embedded; as a deployment it runs on the target's
own work pool. It resolves its inputs itself (the runner has its own checkout) and returns
JSON: the target's outcome and the MLflow run id of each candidate.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from edgeproof.config import MeasureConfig
from edgeproof.errors import EdgeproofError
from edgeproof.judge import judge_target, latency_inconclusive
from edgeproof.measure.harness import TargetMeasurements, extended, measure_target
from edgeproof.optimize import build_candidates
from edgeproof.records import Candidate, CandidateOutcome, ChampionComparison, TargetOutcome
from edgeproof.report.pareto_plot import pareto_plot
from edgeproof.report.plots import latency_plot
from edgeproof.resolve import ResolvedInputs, resolve_inputs
from edgeproof.runtime_env import apply_quiet_defaults
from edgeproof.targets.registry import make_target
from edgeproof.tracking.champion_model import ChampionModel, fetch_champion, file_digests
from edgeproof.tracking.evidence import EvidenceContext
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.run_log import log_target
from gates.champion import compare_with_champion
from gates.select import incumbent_ties


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
    job = inputs.measure_job(target_name, workdir / "outputs")
    settings = settings or inputs.params.measure
    if inputs.params.model.task == "language_model":
        from edgeproof.llama.harness import measure_language_models

        return measure_language_models(baseline, candidates, job, settings, get_run_logger().info)
    return measure_target(baseline, candidates, job, settings, get_run_logger().info)


def measure_on_device(inputs: ResolvedInputs, target_name: str) -> Any:
    """The ``measure`` task tagged ``edgeproof-device:<work_pool>``: with a tag concurrency
    limit of 1 (``make prefect-setup``), one device never measures two things at once,
    whichever runs or deployments ask."""
    pool = inputs.targets[target_name].work_pool
    return measure.with_options(tags={*measure.tags, f"edgeproof-device:{pool}"})


@task(name="decide", cache_policy=NO_CACHE)
def decide(
    inputs: ResolvedInputs,
    target_name: str,
    baseline: Candidate,
    candidates: list[Candidate],
    failed: list[CandidateOutcome],
    measured: TargetMeasurements,
) -> TargetOutcome:
    labels, windows = _eval_truth(inputs)
    return judge_target(
        target_name, baseline, candidates, failed, measured, labels, inputs.params, windows
    )


def _eval_truth(inputs: ResolvedInputs) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(labels, language-model token windows) of the eval split; either may be None."""
    if inputs.params.model.task == "language_model":
        from edgeproof.llama.harness import load_token_windows

        return None, load_token_windows(inputs.eval_data)
    return inputs.load_eval().labels, None


@task(name="fetch-champion", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=3)
def fetch_champion_model(
    inputs: ResolvedInputs, winner: Candidate, workdir: Path
) -> ChampionModel | None:
    store = MlflowStore(inputs.params.tracking)
    return fetch_champion(
        store,
        inputs.params.registry,
        inputs.params.model.name,
        winner.target,
        winner.model_file.suffix,
        workdir,
    )


@task(name="compare-champion", cache_policy=NO_CACHE)
def compare_champion(
    inputs: ResolvedInputs,
    outcome: TargetOutcome,
    champion: ChampionModel,
    winner: Candidate,
    measured: TargetMeasurements,
) -> TargetOutcome:
    """The winner judged with the champion as its baseline; a clear regression blocks."""
    name, version, champ = champion.registered_model, champion.version, champion.candidate
    labels, windows = _eval_truth(inputs)
    rematch = judge_target(
        outcome.target, champ, [winner], [], measured, labels, inputs.params, windows
    )
    mine = next((o for o in rematch.outcomes if o.candidate.name == winner.name), None)
    if mine is None or mine.summary is None:
        why = (mine.error if mine else None) or rematch.reason or "not measured"
        versus = ChampionComparison(
            registered_model=name,
            champion_version=version,
            status="error",
            reason=f"could not compare {winner.name} with champion v{version}: {why}",
        )
        return outcome.model_copy(
            update={"champion": versus, "status": "error", "reason": versus.reason}
        )
    config = inputs.params.registry.compare_with_champion
    versus = compare_with_champion(winner.name, mine.summary, name, version, config)
    update: dict[str, Any] = {"champion": versus}
    if versus.status == "worse":
        update["status"] = "blocked"
    return outcome.model_copy(update=update)


def _champion_twin(
    inputs: ResolvedInputs, outcome: TargetOutcome, built: list[Candidate], digests: list[str]
) -> Candidate | None:
    """This run's passing candidate with the champion's bytes, if it ties with the winner."""
    results = {o.candidate.name: o for o in outcome.outcomes}
    best = results[outcome.winner].summary if outcome.winner else None
    if best is None:
        return None
    for cand in built:
        mine = results.get(cand.name)
        if mine is None or mine.summary is None or mine.verdict.status != "pass":
            continue
        if file_digests(cand) == digests:
            tie = incumbent_ties(best, mine.summary, inputs.params.gates.objective)
            return cand if tie else None
    return None


def versus_champion(
    inputs: ResolvedInputs, outcome: TargetOutcome, built: list[Candidate], workdir: Path
) -> TargetOutcome:
    """Re-measure the current champion beside the winner (same run, same machine)."""
    if not inputs.params.registry.compare_with_champion.enabled or outcome.winner is None:
        return outcome
    winner = next(c for c in built if c.name == outcome.winner)
    champion = fetch_champion_model(inputs, winner, workdir / "champion")
    if champion is None:
        return outcome
    digests = file_digests(champion.candidate)  # hashed once, compared with each candidate
    twin = _champion_twin(inputs, outcome, built, digests)
    if twin is not None and twin.name != winner.name:
        winner = twin
        outcome = outcome.model_copy(
            update={
                "winner": twin.name,
                "reason": f"{twin.name} is the champion's bytes and within noise of "
                f"{outcome.winner} on {inputs.params.gates.objective}: a tie goes to the "
                f"champion ({outcome.reason})",
            }
        )
    version = champion.version
    twin_won = twin is not None and twin.name == winner.name  # its bytes were compared
    if twin_won or file_digests(winner) == digests:
        versus = ChampionComparison(
            registered_model=champion.registered_model,
            champion_version=version,
            status="identical",
            reason=f"{winner.name} is byte-identical to champion v{version}",
        )
        return outcome.model_copy(update={"champion": versus})
    get_run_logger().info(
        "%s: measuring %s against champion v%s", outcome.target, winner.name, version
    )
    champ = champion.candidate
    measured = measure_on_device(inputs, outcome.target)(
        inputs, outcome.target, champ, [winner], workdir / "vs-champion"
    )
    return compare_champion(inputs, outcome, champion, winner, measured)


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
    evidence = EvidenceContext(
        pipeline_run_id=parent_run_id,
        target=outcome.target,
        lineage=inputs.lineage,
        root=inputs.root,
        params_file=inputs.params_file,
        eval_data=inputs.eval_data,
        calibration_data=inputs.calibration_data,
    )
    return log_target(store, experiment_id, parent_run_id, outcome, measured, evidence, plot_dir)


@task(name="plot", cache_policy=NO_CACHE)
def plot(
    inputs: ResolvedInputs, outcome: TargetOutcome, measured: TargetMeasurements, plot_dir: Path
) -> TargetOutcome:
    """Draw the latency and Pareto figures; the outcome names them so the report links them."""
    latency, pareto = f"{outcome.target}-latency.png", f"{outcome.target}-pareto.png"
    drawn = [
        latency
        if latency_plot(
            outcome, measured, inputs.params.gates.latency.min_speedup, plot_dir / latency
        )
        else None,
        pareto if pareto_plot(outcome, plot_dir / pareto) else None,
    ]
    return outcome.model_copy(update={"plots": tuple(n for n in drawn if n)})


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
                measured = measure_on_device(inputs, target)(
                    inputs, target, baseline, built, workdir
                )
                outcome = decide(inputs, target, baseline, built, failed, measured)
                again = latency_inconclusive(outcome)
                if again and inputs.params.gates.on_inconclusive == "rerun":
                    get_run_logger().info("%s: measuring again, longer: %s", target, again)
                    longer = extended(inputs.params.measure)
                    retry = [c for c in built if c.name in again]
                    newer = measure_on_device(inputs, target)(
                        inputs, target, baseline, retry, workdir, longer
                    )
                    measured = measured.replacing(newer, again)
                    outcome = decide(inputs, target, baseline, built, failed, measured)
                outcome = versus_champion(inputs, outcome, built, workdir)
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
