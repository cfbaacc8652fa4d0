"""Noise-aware Pareto front and multi-objective winner selection.

A candidate is a trade-off (faster but less accurate, smaller but hungrier), so one
objective can hide a better choice. This module compares candidates on several metrics at
once (the axes of ``gates.objectives.METRICS``), each as an interval oriented so that
lower is better: sampled metrics (accuracy, median and p90 latency) use their confidence
intervals, deterministic ones (peak RSS, size) a point with a relative tolerance. ``a``
dominates ``b`` only when ``a`` is nowhere clearly worse and somewhere clearly better,
"clearly" meaning the intervals do not overlap beyond the axis' tolerance
(``gates.objectives.interval_clearly_better``), so a lead on point estimates inside the
noise dominates nobody.

``select_on_front`` picks the winner either on one objective (on paired evidence:
``gates.paired_selection.select_paired``) or by a weighted sum of min-max normalized
metrics over the passing candidates on the front, and says in one sentence why the winner
beat the runner-up and whether that margin is outside the noise. Pure functions over
``CandidateSummary`` records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from edgeproof.gates.objectives import (
    DEFAULT_METRICS,
    METRICS,
    NO_TOLERANCE,
    OBJECTIVES,
    Metric,
    Objective,
    check_objective,
    clearly_better,
    clearly_worse,
    interval,
    interval_clearly_better,
    metric_named,
    quality_name,
    raw_value,
    uses_labels,
)
from edgeproof.gates.paired_selection import (
    HeadToHead,
    entrants_from_summaries,
    ratio_of_ratios,
    select_paired,
)
from edgeproof.records import CandidateSummary, Verdict


def _resolve(metrics: Iterable[Metric | str]) -> tuple[Metric, ...]:
    return tuple(metric_named(m) if isinstance(m, str) else m for m in metrics)


def dominates(
    a: CandidateSummary, b: CandidateSummary, metrics: Sequence[Metric | str] = DEFAULT_METRICS
) -> bool:
    """True when ``a`` is not clearly worse than ``b`` on any metric and clearly better on one."""
    labelled = uses_labels((a, b))
    better = False
    for m in _resolve(metrics):
        ia, ib = interval(a, m, labelled), interval(b, m, labelled)
        if interval_clearly_better(ib, ia, rel_tol=m.rel_tol):
            return False
        better = better or interval_clearly_better(ia, ib, rel_tol=m.rel_tol)
    return better


@dataclass(frozen=True)
class ParetoResult:
    """The non-dominated candidates and, for each dominated one, who dominates it."""

    front: tuple[str, ...]
    dominated_by: Mapping[str, tuple[str, ...]]
    metrics: tuple[str, ...]

    def explain(self) -> list[str]:
        """One line per dominated candidate: "x is dominated by y, z"."""
        return [f"{n} is dominated by {', '.join(by)}" for n, by in self.dominated_by.items()]


def pareto_front(
    summaries: Mapping[str, CandidateSummary], metrics: Sequence[Metric | str] = DEFAULT_METRICS
) -> ParetoResult:
    """The noise-aware Pareto front of ``summaries`` (keyed by candidate name), input order.

    Overlap-based dominance is not transitive, so in principle a cycle of overlapping
    intervals can leave every candidate dominated; then nobody can be ruled out and the
    front is every candidate.
    """
    ms = _resolve(metrics)
    by: dict[str, tuple[str, ...]] = {}
    for name, s in summaries.items():
        doms = tuple(o for o, t in summaries.items() if o != name and dominates(t, s, ms))
        if doms:
            by[name] = doms
    front = tuple(n for n in summaries if n not in by)
    if summaries and not front:
        front, by = tuple(summaries), {}
    return ParetoResult(front=front, dominated_by=by, metrics=tuple(m.name for m in ms))


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """A checked copy of ``weights``; ValueError on unknown names, negative or all-zero."""
    out: dict[str, float] = {}
    for name, w in weights.items():
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r} in weights; one of {sorted(METRICS)}")
        w = float(w)
        if not math.isfinite(w):
            raise ValueError(f"weight for {name!r} must be a finite number, got {w}")
        if w < 0:
            raise ValueError(f"weight for {name!r} must not be negative, got {w:g}")
        out[name] = w
    if not any(out.values()):
        raise ValueError("weights are all zero; give at least one metric a positive weight")
    return out


@dataclass(frozen=True)
class SelectionPolicy:
    """How to pick a winner: one ``objective`` (``gates.objectives.OBJECTIVES``) or metric
    ``weights`` (keys: ``gates.objectives.METRICS``)."""

    objective: Objective | None = None
    weights: Mapping[str, float] | None = None
    speed_tol: float = 0.0  # a latency lead within this is a tie (``select_paired``)
    confidence: float = 0.99  # of the head-to-head ratios (the measurement's confidence)

    def __post_init__(self) -> None:
        if (self.objective is None) == (self.weights is None):
            raise ValueError("set exactly one of objective and weights")
        if self.objective is not None:
            check_objective(self.objective)
        if self.weights is not None:
            object.__setattr__(self, "weights", validate_weights(self.weights))


@dataclass(frozen=True)
class Selection:
    """The winner, the runner-up, why (one sentence), scores (lower better) and the front.

    ``wanted_head_to_head``: finalist pairs compared only via the baseline (tied, or with
    overlapping CIs); timing them against each other and selecting again sharpens the
    call."""

    winner: str | None
    runner_up: str | None
    reason: str
    scores: Mapping[str, float]
    front: ParetoResult
    wanted_head_to_head: tuple[tuple[str, str], ...] = ()


def _fmt(metric: Metric, value: float) -> str:
    return f"{value:.1%}" if metric.name == "accuracy" else f"{value:.3g} {metric.unit}"


def _margin(
    metric: Metric, w: CandidateSummary, r: CandidateSummary, labelled: bool, note: str = ""
) -> str:
    """How ``w`` beats runner-up ``r`` on ``metric``, and whether that is outside the noise."""
    wv, rv = raw_value(w, metric, labelled), raw_value(r, metric, labelled)
    shown = f"({_fmt(metric, rv)}{note})"
    if wv == rv:
        lead = f"tied on {metric.label} with runner-up {r.candidate} {shown}"
    elif metric.name == "accuracy":
        what = quality_name(w, labelled)
        lead = f"{(wv - rv) * 100:+.1f} pp {what} over runner-up {r.candidate} {shown}"
    else:
        ratio = rv / wv if wv > 0 else math.inf
        word = {"size": "smaller", "peak_rss": "less memory"}.get(metric.name, "faster")
        lead = f"{ratio:.2f}x {word} than runner-up {r.candidate} {shown}"
    if metric.name == "latency" and w.speedup is not None and r.speedup is not None:
        paired = ratio_of_ratios(w.speedup, r.speedup)  # drift between windows cancels
        shown_ci = f"paired {paired.value:.2f}x [{paired.low:.2f}, {paired.high:.2f}]"
        if clearly_better(paired, tolerance=NO_TOLERANCE):
            return lead + f", clearly ahead ({shown_ci})"
        if clearly_worse(paired, tolerance=NO_TOLERANCE):
            return lead + f", yet clearly behind on paired speedup ({shown_ci})"
        return lead + f", within noise ({shown_ci} contains 1)"
    iw, ir = interval(w, metric, labelled), interval(r, metric, labelled)
    apart = interval_clearly_better(iw, ir, rel_tol=metric.rel_tol)
    if iw[0] != iw[1] or ir[0] != ir[1]:
        return lead + (", CIs apart" if apart else ", within noise (CIs overlap)")
    if iw == ir:
        return lead + ", broken by size, then name"
    if metric.rel_tol > 0:
        tol = f"{metric.rel_tol:.0%} tolerance"
        return lead + (f", beyond the {tol}" if apart else f", within noise ({tol})")
    return lead


def _plural(n: int) -> str:
    return "candidate" if n == 1 else "candidates"


def _by_objective(
    summaries: Mapping[str, CandidateSummary],
    passing: dict[str, CandidateSummary],
    objective: Objective,
    front: ParetoResult,
    head_to_head: Mapping[tuple[str, str], HeadToHead] | None = None,
    speed_tol: float = 0.0,
    confidence: float = 0.99,
) -> Selection:
    """One objective, decided on paired evidence (``gates.paired_selection``).

    Candidates are ranked by their speedups over the shared baseline (each timed in its own
    window, interleaved with the baseline), never by absolute medians of different windows,
    and by ``head_to_head`` blocks for the pairs timed against each other; ties within
    noise go to smaller, then less memory, then the recipe listed first.
    """
    axis = OBJECTIVES[objective]
    entrants = entrants_from_summaries(summaries, passing)
    chosen = select_paired(entrants, objective, head_to_head, confidence, speed_tol=speed_tol)
    return Selection(
        winner=chosen.winner,
        runner_up=chosen.runner_up,
        reason=chosen.reason,
        scores={name: raw_value(s, axis) for name, s in passing.items()},
        front=front,
        wanted_head_to_head=chosen.wanted_head_to_head,
    )


def _by_weights(
    passing: dict[str, CandidateSummary], weights: Mapping[str, float], front: ParetoResult
) -> Selection:
    labelled = uses_labels(passing.values())
    on_front = [passing[n] for n in front.front]
    used = [METRICS[n] for n, w in weights.items() if w > 0]
    total = sum(weights[m.name] for m in used)
    norm: dict[str, dict[str, float]] = {}
    for m in used:
        sign = -1.0 if m.higher_is_better else 1.0
        vals = {s.candidate: sign * raw_value(s, m, labelled) for s in on_front}
        lo, hi = min(vals.values()), max(vals.values())
        norm[m.name] = {n: (v - lo) / (hi - lo) if hi > lo else 0.0 for n, v in vals.items()}
    scores = {
        s.candidate: sum(weights[m.name] * norm[m.name][s.candidate] for m in used) / total
        for s in on_front
    }
    ranked = sorted(on_front, key=lambda s: (scores[s.candidate], s.size_mb, s.candidate))
    best = ranked[0]
    shown = ", ".join(f"{m.name} {weights[m.name]:g}" for m in used)
    n_pass, n_front = len(passing), len(on_front)
    if n_front == n_pass:
        among = f"{n_pass} passing {_plural(n_pass)}, all on the Pareto front"
    else:
        among = f"{n_front} Pareto-optimal of {n_pass} passing candidates"
    reason = f"lowest weighted score {scores[best.candidate]:.3g} ({shown}) among {among}"
    runner = ranked[1] if len(ranked) > 1 else None
    if runner is None:
        beaten = sorted(n for n in passing if n != best.candidate)
        if beaten:
            reason += f"; it dominates {', '.join(beaten)}"
    else:
        r, b = runner.candidate, best.candidate
        gains = {m.name: weights[m.name] * (norm[m.name][r] - norm[m.name][b]) for m in used}
        deciding = max(used, key=lambda m: gains[m.name])
        if gains[deciding.name] <= 0:
            reason += (
                f"; tied with runner-up {runner.candidate} "
                f"({scores[runner.candidate]:.3g}), broken by size, then name"
            )
        else:
            value = _fmt(deciding, raw_value(best, deciding, labelled))
            note = f", score {scores[runner.candidate]:.3g}"
            reason += f"; {deciding.label} {value} decides: " + _margin(
                deciding, best, runner, labelled, note
            )
    return Selection(
        winner=best.candidate,
        runner_up=runner.candidate if runner else None,
        reason=reason,
        scores=scores,
        front=front,
    )


def front_metrics(policy: SelectionPolicy) -> tuple[Metric, ...]:
    """The metrics the front is computed on: the defaults plus any other weighted metric."""
    extra = [n for n, w in (policy.weights or {}).items() if w > 0]
    names = [m.name for m in DEFAULT_METRICS] + extra
    return tuple(metric_named(n) for n in dict.fromkeys(names))


def select_on_front(
    summaries: Mapping[str, CandidateSummary],
    verdicts: Mapping[str, Verdict],
    policy: SelectionPolicy,
    metrics: Sequence[Metric | str] | None = None,
    head_to_head: Mapping[tuple[str, str], HeadToHead] | None = None,
) -> Selection:
    """Pick the winner among passing non-baseline candidates according to ``policy``.

    The front is computed over the passing non-baseline candidates on ``metrics`` (default
    ``front_metrics(policy)``). With an objective, every passing candidate competes
    (``_by_objective``: paired evidence, ties to smaller, less memory, listed first); with
    weights, only those on the front (ties: size, then name).
    """
    passing = {
        name: s
        for name, s in summaries.items()
        if not s.is_baseline and name in verdicts and verdicts[name].status == "pass"
    }
    ms = front_metrics(policy) if metrics is None else _resolve(metrics)
    front = pareto_front(passing, ms)
    if not passing:
        return Selection(None, None, "no candidate passed every gate", {}, front)
    if policy.objective is not None:
        return _by_objective(
            summaries,
            passing,
            policy.objective,
            front,
            head_to_head,
            policy.speed_tol,
            policy.confidence,
        )
    assert policy.weights is not None
    return _by_weights(passing, policy.weights, front)


def with_tolerance(name: str, rel_tol: float) -> Metric:
    """A copy of metric ``name`` with another relative tolerance (e.g. peak RSS at 5%)."""
    if rel_tol < 0:
        raise ValueError(f"tolerance must not be negative, got {rel_tol:g}")
    return replace(_resolve([name])[0], rel_tol=rel_tol)
