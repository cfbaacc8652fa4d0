"""Turn one target's measurements into scores, summaries, verdicts and a winner.

The statistics and the decisions themselves live in ``gates`` (pure functions); this module
only loads the outputs each worker wrote, scores them against the baseline's and the labels,
and assembles the records. A candidate that could not be built or measured gets an
``error`` verdict with the reason; the others are judged as usual.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeproof.config import Params
from edgeproof.errors import EdgeproofError
from edgeproof.evaluate import load_outputs, score_candidate
from edgeproof.measure.harness import TargetMeasurements
from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    CandidateSummary,
    OpCoverage,
    TargetOutcome,
    Verdict,
)
from gates.checks import decide
from gates.pareto import SelectionPolicy, pareto_front, select_on_front
from gates.summarize import summarize
from gates.summarize_lm import summarize_language_model


def error_outcome(candidate: Candidate, reason: str) -> CandidateOutcome:
    """The record of a candidate that could not be built, measured or scored."""
    verdict = Verdict(candidate=candidate.name, status="error", checks=(), reasons=(reason,))
    return CandidateOutcome(candidate=candidate, summary=None, verdict=verdict, error=reason)


def latency_inconclusive(outcome: TargetOutcome) -> list[str]:
    """Candidates whose verdict hangs on an inconclusive latency check (more samples help)."""
    return [
        o.candidate.name
        for o in outcome.outcomes
        if not o.candidate.is_baseline
        and not any(c.status == "fail" for c in o.verdict.checks)
        and any(
            c.status == "inconclusive" and c.name.startswith("latency.") for c in o.verdict.checks
        )
    ]


def judge_target(
    target: str,
    baseline: Candidate,
    candidates: list[Candidate],
    failed: list[CandidateOutcome],
    measured: TargetMeasurements,
    labels: np.ndarray | None,
    params: Params,
    windows: np.ndarray | None = None,
) -> TargetOutcome:
    """Summaries and verdicts for every candidate, and the target's winner.

    ``windows``: the held-out token windows of a language model (task language_model).
    """
    if baseline.name not in measured.raw:
        reason = measured.errors.get(baseline.name, "baseline was not measured")
        return TargetOutcome(
            target=target, available=True, reason=reason, baseline=baseline.name, status="error"
        )
    if params.model.task == "language_model":
        if windows is None:
            raise ValueError("a language model is judged on its held-out token windows")
        summaries, outcomes = _language_summaries(baseline, candidates, measured, windows, params)
    else:
        summaries, outcomes = _summaries(baseline, candidates, measured, labels, params)
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
        name: decide(summary, summaries[baseline.name], params.gates, by_name[name].failure)
        for name, summary in summaries.items()
    }
    outcomes = [
        CandidateOutcome(candidate=by_name[name], summary=summaries[name], verdict=verdicts[name])
        for name in summaries
    ] + outcomes
    outcomes.extend(failed)
    gates = params.gates
    policy = SelectionPolicy(
        objective=None if gates.weights else gates.objective, weights=gates.weights
    )
    selection = select_on_front(summaries, verdicts, policy)
    front = pareto_front(summaries)
    return TargetOutcome(
        target=target,
        available=True,
        reason=selection.reason,
        baseline=baseline.name,
        outcomes=tuple(outcomes),
        winner=selection.winner,
        runner_up=selection.runner_up,
        pareto_front=front.front,
        dominated_by=dict(front.dominated_by),
        status="pass" if selection.winner else "blocked",
    )


Judged = tuple[dict[str, CandidateSummary], list[CandidateOutcome]]


def _judge_each(
    baseline: Candidate,
    candidates: list[Candidate],
    measured: TargetMeasurements,
    summarize_one: Callable[[Candidate], CandidateSummary],
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
    return summaries, outcomes


def _summaries(
    baseline: Candidate,
    candidates: list[Candidate],
    measured: TargetMeasurements,
    labels: np.ndarray | None,
    params: Params,
) -> Judged:
    """Outputs scored against the baseline's and the labels (every task but language_model)."""
    task, fidelity = params.model.task, params.gates.fidelity
    base_outputs = load_outputs(measured.outputs[baseline.name])

    def summarize_one(cand: Candidate) -> CandidateSummary:
        outputs = load_outputs(measured.outputs[cand.name])
        scores = score_candidate(task, cand.name, outputs, base_outputs, labels, fidelity)
        summary = summarize(
            cand.name,
            cand.precision,
            cand.is_baseline,
            measured.raw[cand.name],
            scores,
            params.measure,
            fidelity.low_quantile,
        )
        return with_op_coverage(summary, cand)

    return _judge_each(baseline, candidates, measured, summarize_one)


def with_op_coverage(summary: CandidateSummary, candidate: Candidate) -> CandidateSummary:
    """The summary with the op coverage its compiler reported (``recipe["op_coverage"]``)."""
    found = candidate.recipe.get("op_coverage")
    if not found:
        return summary
    fields = {k: found.get(k) for k in OpCoverage.model_fields}
    return summary.model_copy(update={"op_coverage": OpCoverage(**fields)})


def _language_summaries(
    baseline: Candidate,
    candidates: list[Candidate],
    measured: TargetMeasurements,
    windows: np.ndarray,
    params: Params,
) -> Judged:
    """Language models: each one's logits against the baseline's on ``windows``."""
    base_logits = np.load(measured.outputs[baseline.name], allow_pickle=False)

    def summarize_one(cand: Candidate) -> CandidateSummary:
        return summarize_language_model(
            cand.name,
            cand.precision,
            cand.is_baseline,
            measured.raw[cand.name],
            base_logits,
            np.load(measured.outputs[cand.name], allow_pickle=False),
            windows,
            float(cand.recipe.get("bits_per_weight", float("nan"))),
            int(cand.recipe.get("n_params", 0)),
            params.measure,
        )

    return _judge_each(baseline, candidates, measured, summarize_one)
