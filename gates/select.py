"""Pick one winner per target among the candidates that passed every gate."""

from __future__ import annotations

from edgeproof.records import CandidateSummary, Verdict

_OBJECTIVES = {
    "median_latency": ("median latency", "ms", lambda s: s.median_ms.value),
    "p90_latency": ("p90 latency", "ms", lambda s: s.p90_ms.value),
    "size": ("size", "MB", lambda s: s.size_mb),
    "peak_rss": ("peak RSS", "MB", lambda s: s.peak_rss_mb),
}


def select_winner(
    summaries: dict[str, CandidateSummary], verdicts: dict[str, Verdict], objective: str
) -> tuple[str | None, str]:
    """(winner, why): the passing non-baseline candidate best on ``objective``.

    Ties are broken by size, then by name, so the choice is deterministic.
    """
    label, unit, key = _OBJECTIVES[objective]
    passing = [
        s for name, s in summaries.items() if not s.is_baseline and verdicts[name].status == "pass"
    ]
    if not passing:
        return None, "no candidate passed every gate"
    ranked = sorted(passing, key=lambda s: (key(s), s.size_mb, s.candidate))
    best = ranked[0]
    why = f"lowest {label} {key(best):.3g} {unit} among {len(ranked)} passing candidate(s)"
    if len(ranked) > 1:
        runner = ranked[1]
        why += f" (runner-up {runner.candidate}: {key(runner):.3g} {unit})"
    return best.candidate, why
