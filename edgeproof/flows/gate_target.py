"""Prefect flow ``gate-target``: one target, on the runner that has its hardware.

optimize -> measure -> decide (summaries, verdicts, winner) -> time close finalists
against each other, and select again -> re-measure the current champion beside the
winner (a clear regression blocks promotion), or, when no optimized candidate passed,
beside the baseline the target falls back to -> track. The parent flow
``quality-gate`` runs it in-process when embedded; as a deployment it runs on the target's
own work pool. It resolves its inputs itself (the runner has its own checkout) and returns
the target's ``TargetResult`` as JSON. Wiring only: the task kind measures and summarizes,
``gates`` decides, ``tracking`` talks to MLflow, ``report`` draws.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from edgeproof.config import MeasureConfig
from edgeproof.errors import EdgeproofError, first_line
from edgeproof.flows.retry import TRACKING_RETRIES
from edgeproof.gates.champion import (
    identical_to_champion,
    judge_against_champion,
    judge_fallback_against_champion,
    prefer_champion_twin,
)
from edgeproof.gates.outcome import champion_twin, fallback_baseline, rerun_candidates
from edgeproof.measure.harness import extended
from edgeproof.pipeline.judge import judge_task, reselect
from edgeproof.pipeline.optimize import build_candidates, unavailable_outcome
from edgeproof.pipeline.resolve import ResolvedInputs, resolve_inputs
from edgeproof.records import Candidate, CandidateOutcome, TargetOutcome, TargetResult
from edgeproof.records.measurement import HeadToHeadRun, TargetMeasurements
from edgeproof.report.target_plots import draw_target_plots
from edgeproof.runtime.env import apply_quiet_defaults
from edgeproof.targets.registry import make_target
from edgeproof.tracking.champion_model import ChampionModel, fetch_champion, file_digests
from edgeproof.tracking.evidence import EvidenceContext
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.run_log import log_target


@task(name="optimize", cache_policy=NO_CACHE)
def optimize(
    inputs: ResolvedInputs, target_name: str, workdir: Path
) -> tuple[Candidate, list[Candidate], list[CandidateOutcome]]:
    target = make_target(target_name, inputs.targets[target_name])
    judge = inputs.task.probe_judge(inputs.params, inputs.feed)  # a search's probes
    return build_candidates(
        target, inputs.model, inputs.load_calibration(), workdir, get_run_logger().info, judge
    )


@task(name="measure", cache_policy=NO_CACHE)
def measure(
    inputs: ResolvedInputs,
    target_name: str,
    baseline: Candidate,
    candidates: list[Candidate],
    workdir: Path,
    settings: MeasureConfig | None = None,
    early_fail: bool = False,
) -> TargetMeasurements:
    """``early_fail``: stop timing a candidate the speed or top-1 agreement gate clearly
    fails (the gated measurement; a re-measurement beside the champion is judged by other
    limits)."""
    job = inputs.measure_job(target_name, workdir / "outputs")
    if early_fail:
        gates = inputs.params.gates
        job = replace(
            job,
            stop_below_speedup=gates.latency.min_speedup,
            stop_below_agreement=(
                gates.fidelity.min_top1_agreement if inputs.task.stops_on_agreement else None
            ),
        )
    settings = settings or inputs.params.measure
    return inputs.task.measure(baseline, candidates, job, settings, get_run_logger().info)


@task(name="head-to-head", cache_policy=NO_CACHE)
def head_to_head(
    inputs: ResolvedInputs,
    target_name: str,
    pairs: list[tuple[Candidate, Candidate]],
    workdir: Path,
) -> list[HeadToHeadRun]:
    """Close finalists compared only via the baseline, timed against each other; a pair whose
    workers fail is left out (the selection then keeps the ratio of their speedups)."""
    job = inputs.measure_job(target_name, workdir / "outputs")
    logger = get_run_logger()
    runs = []
    for a, b in pairs:
        try:
            run = inputs.task.head_to_head(a, b, job, inputs.params.measure, logger.info)
        except EdgeproofError as exc:
            logger.warning("%s: head-to-head %s vs %s failed: %s", target_name, a.name, b.name, exc)
            continue
        if run is not None:
            runs.append(run)
    return runs


def measure_on_device(inputs: ResolvedInputs, target_name: str, what: Any = measure) -> Any:
    """The ``measure`` (or another timing) task, tagged ``edgeproof-device:<work_pool>`` and
    ``edgeproof-measure`` when the Prefect API has a concurrency limit on the device tag
    (``make prefect-setup`` creates it, limit 1): then one device never measures two things
    at once, whichever runs or deployments ask. Without such a limit the task is left
    untagged: Prefect asks the API for a slot for every tag a task run carries (a write), and
    on a sqlite-backed server (the temporary one of ``edgeproof run``, a plain ``prefect
    server start``) that write often meets the server's own event writes, gets 503
    "database is locked" and is retried ~2 s later, for a limit that does not exist."""
    tag = f"edgeproof-device:{inputs.targets[target_name].work_pool}"
    if not _has_concurrency_limit(tag):
        return what
    return what.with_options(tags={*what.tags, "edgeproof-measure", tag})


def _has_concurrency_limit(tag: str) -> bool:
    """Whether the Prefect API has a tag concurrency limit on ``tag`` (a read)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_concurrency_limit_by_tag(tag)
        except ObjectNotFound:
            return False
    return True


@task(name="decide", cache_policy=NO_CACHE)
def decide(
    inputs: ResolvedInputs,
    target_name: str,
    baseline: Candidate,
    candidates: list[Candidate],
    failed: list[CandidateOutcome],
    measured: TargetMeasurements,
) -> TargetOutcome:
    truth = inputs.load_truth()
    return judge_task(
        inputs.task, target_name, baseline, candidates, failed, measured, truth, inputs.params
    )


@task(name="fetch-champion", cache_policy=NO_CACHE, **TRACKING_RETRIES)
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


def versus_champion(
    inputs: ResolvedInputs,
    outcome: TargetOutcome,
    built: list[Candidate],
    workdir: Path,
    baseline: Candidate | None = None,
) -> TargetOutcome:
    """Re-measure the current champion beside the winner (same run, same machine); with no
    winner, beside the ``baseline`` the target falls back to (``gates.outcome``)."""
    registry = inputs.params.registry
    if not registry.compare_with_champion.enabled:
        return outcome
    if outcome.winner is None:
        fallback = fallback_baseline(outcome, registry.fallback_to_baseline)
        if fallback is None or baseline is None or baseline.name != fallback:
            return outcome
        return fallback_versus_champion(inputs, outcome, baseline, workdir)
    by_name = {c.name: c for c in built}
    champion = fetch_champion_model(inputs, by_name[outcome.winner], workdir / "champion")
    if champion is None:
        return outcome
    digests = file_digests(champion.candidate)
    identical = [c.name for c in built if file_digests(c) == digests]
    objective = inputs.params.gates.objective
    twin = champion_twin(outcome, identical, objective)
    if twin is not None and twin != outcome.winner:
        outcome = prefer_champion_twin(outcome, twin, objective)
    assert outcome.winner is not None
    if outcome.winner in identical:
        return identical_to_champion(outcome, champion.registered_model, champion.version)
    winner = by_name[outcome.winner]
    rematch = rematch_with_champion(inputs, outcome.target, champion, winner, workdir)
    return judge_against_champion(
        outcome,
        rematch,
        winner.name,
        champion.registered_model,
        champion.version,
        inputs.params.registry.compare_with_champion,
        inputs.source(outcome.target),
        champion.source,
        objective,
    )


def rematch_with_champion(
    inputs: ResolvedInputs,
    target: str,
    champion: ChampionModel,
    challenger: Candidate,
    workdir: Path,
) -> TargetOutcome:
    """``challenger`` (a winner, or the baseline a target falls back to) measured and judged
    with the current champion as its baseline: same run, same machine."""
    get_run_logger().info(
        "%s: measuring %s against champion v%s", target, challenger.name, champion.version
    )
    measured = measure_on_device(inputs, target)(
        inputs, target, champion.candidate, [challenger], workdir / "vs-champion"
    )
    return decide(inputs, target, champion.candidate, [challenger], [], measured)


def fallback_versus_champion(
    inputs: ResolvedInputs, outcome: TargetOutcome, baseline: Candidate, workdir: Path
) -> TargetOutcome:
    """Re-measure the current champion beside the baseline a target falls back to: the
    champion rules hold for it as for a winner (its own bytes, or the same source and not
    clearly better: nothing moves)."""
    champion = fetch_champion_model(inputs, baseline, workdir / "champion")
    if champion is None:
        return outcome
    if file_digests(baseline) == file_digests(champion.candidate):
        return identical_to_champion(
            outcome, champion.registered_model, champion.version, baseline.name
        )
    challenger = baseline.model_copy(update={"is_baseline": False})  # timed as a candidate
    rematch = rematch_with_champion(inputs, outcome.target, champion, challenger, workdir)
    return judge_fallback_against_champion(
        outcome,
        rematch,
        baseline.name,
        champion.registered_model,
        champion.version,
        inputs.params.registry.compare_with_champion,
        inputs.source(outcome.target),
        champion.source,
        inputs.params.gates.objective,
    )


@task(name="track", cache_policy=NO_CACHE, **TRACKING_RETRIES)
def track(
    inputs: ResolvedInputs,
    experiment_id: str,
    parent_run_id: str,
    outcome: TargetOutcome,
    measured: TargetMeasurements | None,
    plot_dir: Path,
) -> TargetResult:
    store = MlflowStore(inputs.params.tracking)
    evidence = EvidenceContext(
        pipeline_run_id=parent_run_id,
        target=outcome.target,
        lineage=inputs.lineage,
        root=inputs.root,
        params_file=inputs.params_file,
        eval_data=inputs.eval_data,
        calibration_data=inputs.calibration_data,
        serving=inputs.serving_context(outcome.target),
        signing_key=inputs.signing_key(),
    )
    target_run, runs = log_target(
        store, experiment_id, parent_run_id, outcome, measured, evidence, plot_dir
    )
    return TargetResult(outcome=outcome, target_run=target_run, candidate_runs=runs)


@task(name="plot", cache_policy=NO_CACHE)
def plot(
    inputs: ResolvedInputs, outcome: TargetOutcome, measured: TargetMeasurements, plot_dir: Path
) -> TargetOutcome:
    return draw_target_plots(outcome, measured, inputs.params.gates.latency.min_speedup, plot_dir)


def optimize_measure_decide(
    inputs: ResolvedInputs, target: str, workdir: Path
) -> tuple[TargetOutcome, TargetMeasurements]:
    """The target's outcome (champion comparison included) and its measurements."""
    baseline, built, failed = optimize(inputs, target, workdir)
    on_device = measure_on_device(inputs, target)
    measured = on_device(inputs, target, baseline, built, workdir, early_fail=True)
    outcome = decide(inputs, target, baseline, built, failed, measured)
    again = rerun_candidates(outcome, inputs.params.gates.on_inconclusive)
    if again:
        get_run_logger().info("%s: measuring again, longer: %s", target, again)
        longer = extended(inputs.params.measure)
        retry = [c for c in built if c.name in again]
        newer = on_device(inputs, target, baseline, retry, workdir, longer, early_fail=True)
        measured = measured.replacing(newer, again)
        outcome = decide(inputs, target, baseline, built, failed, measured)
    if outcome.wanted_head_to_head and inputs.params.measure.head_to_head:
        by_name = {c.name: c for c in built}
        pairs = [(by_name[a], by_name[b]) for a, b in outcome.wanted_head_to_head]
        timed = measure_on_device(inputs, target, head_to_head)(inputs, target, pairs, workdir)
        if timed:
            outcome = reselect(outcome, timed, inputs.params)
    return versus_champion(inputs, outcome, built, workdir, baseline), measured


@flow(name="gate-target", log_prints=True)
def gate_target(
    params_file: str, target: str, experiment_id: str, parent_run_id: str
) -> dict[str, Any]:
    """Gate one target and log it under the parent MLflow run; its TargetResult as JSON."""
    apply_quiet_defaults()
    inputs = resolve_inputs(Path(params_file), [target])
    outcome = unavailable_outcome(make_target(target, inputs.targets[target]))
    measured: TargetMeasurements | None = None
    workdir = Path(tempfile.mkdtemp(prefix=f"edgeproof-{target}-"))
    logger = get_run_logger()
    try:
        if outcome is None:
            try:
                outcome, measured = optimize_measure_decide(inputs, target, workdir)
            except EdgeproofError as exc:  # the baseline itself failed: this target errs
                outcome = TargetOutcome(
                    target=target, available=True, reason=str(exc), status="error"
                )
            except Exception as exc:  # a bug in one target fails that target only
                outcome = TargetOutcome(
                    target=target, available=True, reason=internal_error(exc), status="error"
                )
                logger.error("%s: %s", target, outcome.reason)
        if measured is not None and outcome.status != "error":
            try:
                outcome = plot(inputs, outcome, measured, workdir / "plots")
            except Exception as exc:  # the verdict stands without its plots
                logger.warning("%s: plots not drawn: %s", target, internal_error(exc))
        result = _tracked(inputs, experiment_id, parent_run_id, outcome, measured, workdir)
        logger.info("%s: finished: %s", target, result.outcome.headline())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result.model_dump(mode="json")


def internal_error(exc: BaseException) -> str:
    """One line for an unexpected exception: its type and first line."""
    first = first_line(exc, 300) if str(exc).strip() else ""
    return f"internal error: {type(exc).__name__}" + (f": {first}" if first else "")


def _tracked(
    inputs: ResolvedInputs,
    experiment_id: str,
    parent_run_id: str,
    outcome: TargetOutcome,
    measured: TargetMeasurements | None,
    workdir: Path,
) -> TargetResult:
    """``track``; if logging the outcome itself fails (after its retries), the target errs
    with the reason, logged without its candidates, so its verdict is never half-trusted
    and the others' go on. A failure to log even that gives a result with no runs."""
    try:
        return track(inputs, experiment_id, parent_run_id, outcome, measured, workdir / "plots")
    except Exception as exc:
        why = f"tracking failed: {exc if isinstance(exc, EdgeproofError) else internal_error(exc)}"
        get_run_logger().error("%s: %s", outcome.target, why)
    failed = TargetOutcome(
        target=outcome.target,
        available=outcome.available,
        reason=why,
        baseline=outcome.baseline,
        status="error",
    )
    try:
        return track.fn(inputs, experiment_id, parent_run_id, failed, None, workdir / "plots")
    except Exception:
        return TargetResult.failed(outcome.target, why)
