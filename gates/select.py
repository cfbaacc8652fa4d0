"""Pick one winner per target among the candidates that passed every gate."""

from __future__ import annotations

from collections.abc import Callable

from edgeproof.records import CandidateSummary, Verdict

Key = Callable[[CandidateSummary], float]

OBJECTIVES: dict[str, tuple[str, str, Key]] = {
    "median_latency": ("median latency", "ms", lambda s: s.median_ms.value),
    "p90_latency": ("p90 latency", "ms", lambda s: s.p90_ms.value),
    "size": ("size", "MB", lambda s: s.size_mb),
    "peak_rss": ("peak RSS", "MB", lambda s: s.peak_rss_mb),
}


def select_winner(
    summaries: dict[str, CandidateSummary], verdicts: dict[str, Verdict], objective: str
) -> tuple[str | None, str]:
    """(winner, why): the best non-baseline candidate with verdict "pass" on ``objective``.

    Lower is better for every objective; ties are broken by size, then by name, so the
    choice is deterministic. A candidate without a verdict does not pass.
    Returns (None, "no candidate passed every gate") when no candidate qualifies.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; one of {sorted(OBJECTIVES)}")
    label, unit, key = OBJECTIVES[objective]
    passing = [
        s
        for name, s in summaries.items()
        if not s.is_baseline and name in verdicts and verdicts[name].status == "pass"
    ]
    if not passing:
        return None, "no candidate passed every gate"
    ranked = sorted(passing, key=lambda s: (key(s), s.size_mb, s.candidate))
    best = ranked[0]
    plural = "candidate" if len(ranked) == 1 else "candidates"
    why = f"lowest {label} {key(best):.3g} {unit} among {len(ranked)} passing {plural}"
    if len(ranked) > 1:
        runner = ranked[1]
        why += f" (runner-up {runner.candidate} {key(runner):.3g} {unit})"
    return best.candidate, why
