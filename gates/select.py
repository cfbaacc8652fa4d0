"""Objectives a winner can be picked on, and the rule that keeps an incumbent on a tie.

The selection itself (one objective, or weights over the Pareto front) is
``gates.pareto.select_on_front``.
"""

from __future__ import annotations

from collections.abc import Callable

from edgeproof.records import CandidateSummary
from gates.paired_selection import ratio_of_ratios

Key = Callable[[CandidateSummary], float]

OBJECTIVES: dict[str, tuple[str, str, Key]] = {
    "median_latency": ("median latency", "ms", lambda s: s.median_ms.value),
    "p90_latency": ("p90 latency", "ms", lambda s: s.p90_ms.value),
    "size": ("size", "MB", lambda s: s.size_mb),
    "peak_rss": ("peak RSS", "MB", lambda s: s.peak_rss_mb),
}


def _interval(summary: CandidateSummary, objective: str) -> tuple[float, float]:
    """The objective's confidence interval (a point for deterministic quantities)."""
    if objective == "median_latency":
        return summary.median_ms.low, summary.median_ms.high
    if objective == "p90_latency":
        return summary.p90_ms.low, summary.p90_ms.high
    value = OBJECTIVES[objective][2](summary)
    return value, value


def incumbent_ties(winner: CandidateSummary, incumbent: CandidateSummary, objective: str) -> bool:
    """True when the winner is not clearly better than the incumbent on ``objective``.

    The incumbent (this run's candidate that is byte-identical to the current champion) is
    kept unless the winner is clearly better, so a winner picked by noise among equals does
    not register a new version on every push. For median latency the speedups over the
    shared baseline are compared (each was measured interleaved with it, so load drifting
    between the two candidates' turns cancels out): clearly better = the whole CI of the
    ratio of the two speedups above 1 (``gates.paired_selection.ratio_of_ratios``).
    Otherwise the objective's own intervals (lower is better); a deterministic quantity
    must simply be lower.
    """
    if objective == "median_latency" and winner.speedup and incumbent.speedup:
        return not ratio_of_ratios(winner.speedup, incumbent.speedup).low > 1.0
    _, win_high = _interval(winner, objective)
    inc_low, _ = _interval(incumbent, objective)
    return not win_high < inc_low
