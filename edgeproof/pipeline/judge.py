"""Turn one target's measurements into scores, summaries, verdicts and a winner.

The statistics and the decisions themselves live in ``gates`` (pure functions); this module
only has each candidate summarized by the task kind (``edgeproof.tasks``), decided by the
gates, and assembles the records. A candidate that could not be built or measured gets an
``error`` verdict with the reason; the others are judged as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeproof.config import Params
from edgeproof.errors import EdgeproofError
from edgeproof.gates.checks import KindChecks, decide
from edgeproof.gates.paired_selection import HeadToHead, block_medians, paired_ratio
from edgeproof.gates.pareto import SelectionPolicy, pareto_front, select_on_front
from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    CandidateSummary,
    HeadToHeadRecord,
    TargetOutcome,
    Verdict,
)
from edgeproof.records.measurement import HeadToHeadRun, TargetMeasurements
from edgeproof.tasks.base import Summarizer, TaskKind

BASELINE_ONLY = "only the baseline was built: add recipes"


def error_outcome(candidate: Candidate, reason: str) -> CandidateOutcome:
    """The record of a candidate that could not be built, measured or scored."""
    verdict = Verdict(candidate=candidate.name, status="error", checks=(), reasons=(reason,))
    return CandidateOutcome(candidate=candidate, summary=None, verdict=verdict, error=reason)


def judge_target(
    target: str,
    baseline: Candidate,
    candidates: list[Candidate],
    failed: list[CandidateOutcome],
    measured: TargetMeasurements,
    params: Params,
    summarize_one: Summarizer,
    kind: KindChecks | None = None,
) -> TargetOutcome:
    """Summaries and verdicts for every candidate, and the target's winner.

    ``summarize_one``: the task kind's summary of one measured candidate
    (``TaskKind.summarizer``); ``kind``: the task kind's own checks (``TaskKind.checks``)."""
    if baseline.name not in measured.raw:
        reason = measured.errors.get(baseline.name, "baseline was not measured")
        return TargetOutcome(
            target=target, available=True, reason=reason, baseline=baseline.name, status="error"
        )
    summaries, outcomes = _judge_each(baseline, candidates, measured, summarize_one)
    if baseline.name not in summaries:
        reason = next(o.error for o in outcomes if o.candidate.name == baseline.name)
        return TargetOutcome(
            target=target,
            available=True,
            reason=f"baseline {baseline.name}: {reason}",
            baseline=baseline.name,
            outcomes=tuple(outcomes),
            status="error",
        )
    by_name = {c.name: c for c in [baseline, *candidates]}
    verdicts = {
        name: decide(
            summary,
            summaries[baseline.name],
            params.gates,
            by_name[name].failure,
            kind,
            clocks=measured.raw[name].environment.get("clocks"),
        )
        for name, summary in summaries.items()
    }
    outcomes = [
        CandidateOutcome(candidate=by_name[name], summary=summaries[name], verdict=verdicts[name])
        for name in summaries
    ] + outcomes
    outcomes.extend(failed)
    front = pareto_front(summaries)
    judged = TargetOutcome(
        target=target,
        available=True,
        baseline=baseline.name,
        outcomes=tuple(outcomes),
        pareto_front=front.front,
        dominated_by=dict(front.dominated_by),
        status="blocked",
    )
    return _with_selection(judged, summaries, verdicts, params, ())


def reselect(
    outcome: TargetOutcome, head_to_head: Sequence[HeadToHeadRun], params: Params
) -> TargetOutcome:
    """``outcome`` with its winner chosen again, using finalists timed against each other
    for those pairs instead of the ratio of their speedups; the summaries and verdicts
    already judged are kept (nothing is scored twice)."""
    summaries = {o.candidate.name: o.summary for o in outcome.outcomes if o.summary is not None}
    verdicts = {o.candidate.name: o.verdict for o in outcome.outcomes if o.summary is not None}
    return _with_selection(outcome, summaries, verdicts, params, head_to_head)


def _with_selection(
    outcome: TargetOutcome,
    summaries: dict[str, CandidateSummary],
    verdicts: dict[str, Verdict],
    params: Params,
    head_to_head: Sequence[HeadToHeadRun],
) -> TargetOutcome:
    """``outcome`` with the winner, runner-up, reason and status of the selection
    (``summaries`` in recipe order: ties go to the one listed first)."""
    gates = params.gates
    policy = SelectionPolicy(
        objective=None if gates.weights else gates.objective,
        weights=gates.weights,
        speed_tol=gates.speed_tie_tolerance,
        confidence=params.measure.confidence,
    )
    blocks = {(r.a, r.b): _blocks(r) for r in head_to_head}
    selection = select_on_front(summaries, verdicts, policy, head_to_head=blocks)
    reason = selection.reason
    if selection.winner is None and all(o.candidate.is_baseline for o in outcome.outcomes):
        reason = f"{BASELINE_ONLY} (targets.{outcome.target}.recipes)"
    return outcome.model_copy(
        update={
            "reason": reason,
            "winner": selection.winner,
            "runner_up": selection.runner_up,
            "status": "pass" if selection.winner else "blocked",
            "wanted_head_to_head": selection.wanted_head_to_head,
            "head_to_head": tuple(_record(r, blocks[(r.a, r.b)], params) for r in head_to_head),
        }
    )


def _blocks(run: HeadToHeadRun) -> HeadToHead:
    return HeadToHead(
        block_medians(run.a_ms, run.block_size), block_medians(run.b_ms, run.block_size)
    )


def _record(run: HeadToHeadRun, blocks: HeadToHead, params: Params) -> HeadToHeadRecord:
    """What a head-to-head run found: how many times faster ``a`` is than ``b``."""
    ratio = paired_ratio(blocks.a_ms, blocks.b_ms, params.measure.confidence)
    return HeadToHeadRecord(
        a=run.a, b=run.b, ratio=ratio, blocks=len(blocks.a_ms), stopped=run.stopped
    )


Judged = tuple[dict[str, CandidateSummary], list[CandidateOutcome]]


def _judge_each(
    baseline: Candidate,
    candidates: list[Candidate],
    measured: TargetMeasurements,
    summarize_one: Summarizer,
) -> Judged:
    """Summaries of the measured candidates, and error outcomes for those that could not
    be measured or scored."""
    summaries: dict[str, CandidateSummary] = {}
    outcomes: list[CandidateOutcome] = []
    for cand in [baseline, *candidates]:
        if cand.name not in measured.raw:
            outcomes.append(error_outcome(cand, measured.errors.get(cand.name, "not measured")))
            continue
        try:
            summaries[cand.name] = summarize_one(cand)
        except (EdgeproofError, OSError, ValueError) as exc:
            outcomes.append(error_outcome(cand, str(exc)))
        except Exception as exc:  # outputs it cannot score (a map, a string): this one errs
            outcomes.append(error_outcome(cand, f"scoring failed: {type(exc).__name__}: {exc}"))
    return summaries, outcomes


def judge_task(
    task: TaskKind,
    target: str,
    baseline: Candidate,
    candidates: list[Candidate],
    failed: list[CandidateOutcome],
    measured: TargetMeasurements,
    truth: Any,
    params: Params,
) -> TargetOutcome:
    """``judge_target`` with the task kind's summaries against ``truth`` (labels, windows)."""
    summarize_one = task.summarizer(baseline, measured, truth, params)
    return judge_target(
        target, baseline, candidates, failed, measured, params, summarize_one, task.checks()
    )
