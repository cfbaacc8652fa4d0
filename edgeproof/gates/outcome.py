"""Decisions on a target's outcome and on a whole run, from records alone.

- A candidate whose verdict hangs only on an inconclusive latency check is worth measuring
  again, longer (``on_inconclusive: rerun``); one with a failed check is not.
- A run is ``error`` if any target erred or none could run, ``blocked`` if a gate blocked a
  target or a passing winner's champion move was refused (another run moved it meanwhile),
  else ``pass``.
- The champion's twin: when this run rebuilt the champion's exact bytes and that candidate
  passed and ties with the winner (the winner not clearly better on the objective:
  ``gates.champion_policy.incumbent_ties``), the tie goes to the champion, so noise among
  equals does not register a new version on every push.
- Fallback to the baseline (``registry.fallback_to_baseline``): a target where no optimized
  candidate passed (no winner, ``blocked``) but whose baseline passed every quality gate
  registers its baseline instead (``fallback_baseline``), under the same champion rules.
  The target stays ``blocked`` and so does the run (exit 1): no optimization passed, and
  CI says so; the device still gets a valid model. Its promotion's reason starts with
  ``FALLBACK_REASON`` (``is_fallback``), which the audit, the tags and the report show.
- A re-checked champion is ``regressed`` on any clear regression or changed file, but
  ``incomparable`` when it was measured on another device and its files are intact (a
  "regression" there would be false).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from edgeproof.gates.champion_policy import incumbent_ties
from edgeproof.gates.objectives import Objective
from edgeproof.records import CandidateOutcome, Promotion, RunStatus, TargetOutcome

RecheckStatus = Literal["healthy", "regressed", "incomparable"]
FALLBACK_REASON = "fallback: no optimized candidate passed"


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


def rerun_candidates(outcome: TargetOutcome, on_inconclusive: str) -> list[str]:
    """The candidates to measure again, longer: only under ``on_inconclusive: rerun``."""
    return latency_inconclusive(outcome) if on_inconclusive == "rerun" else []


def wants_promotion(outcome: TargetOutcome) -> bool:
    """A target whose winner goes to the registry: it passed, or a gate (or the champion
    comparison) blocked it, which is still registered and recorded, never promoted."""
    return outcome.status in ("pass", "blocked")


def fallback_baseline(outcome: TargetOutcome, enabled: bool) -> str | None:
    """The baseline to register in place of a winner: when ``enabled``, no optimized
    candidate passed (no winner, the target ``blocked``, not erred) and the baseline's own
    verdict passed every quality gate (its absolute checks). None otherwise."""
    if not enabled or outcome.winner is not None or outcome.status != "blocked":
        return None
    base = baseline_outcome(outcome)
    if base is None or base.summary is None or base.verdict.status != "pass":
        return None
    return base.candidate.name


def no_fallback_reason(outcome: TargetOutcome, enabled: bool) -> str | None:
    """Why a target without a winner does not fall back to its baseline (for the record);
    None when it does, when it has a winner, or when the fallback is off."""
    if not enabled or outcome.winner is not None or outcome.status != "blocked":
        return None
    base = baseline_outcome(outcome)
    if base is None or base.summary is None:
        return "no fallback: the baseline was not measured"
    if base.verdict.status != "pass":
        why = "; ".join(base.verdict.reasons) or f"verdict {base.verdict.status}"
        return f"no fallback: the baseline {base.candidate.name} did not pass ({why})"
    return None


def baseline_outcome(outcome: TargetOutcome) -> CandidateOutcome | None:
    """The baseline's candidate outcome, if it was judged."""
    return next((o for o in outcome.outcomes if o.candidate.is_baseline), None)


def is_fallback(promotion: Promotion) -> bool:
    """Whether ``promotion`` is a target's fallback to its baseline (moved or not)."""
    return promotion.reason.startswith(FALLBACK_REASON)


def run_status(outcomes: list[TargetOutcome], promotions: list[Promotion]) -> RunStatus:
    """error if any target erred or none could run; blocked if any gate blocked or a
    passing winner's champion move was refused (another run moved it meanwhile)."""
    statuses = {o.status for o in outcomes}
    if "error" in statuses or statuses <= {"unavailable"}:
        return "error"
    refused = any(p.refused for p in promotions)
    return "blocked" if "blocked" in statuses or refused else "pass"


def champion_twin(
    outcome: TargetOutcome, identical: Collection[str], objective: Objective
) -> str | None:
    """The passing candidate among ``identical`` (byte-identical to the champion) that ties
    with the winner on ``objective``; None if there is none (or no winner)."""
    results = {o.candidate.name: o for o in outcome.outcomes}
    best = results[outcome.winner].summary if outcome.winner else None
    if best is None:
        return None
    for name in identical:
        mine = results.get(name)
        if mine is None or mine.summary is None or mine.verdict.status != "pass":
            continue
        return name if incumbent_ties(best, mine.summary, objective) else None
    return None


def recheck_status(
    bad_files: list[str], regressions: list[str], device_differs: list[str]
) -> tuple[RecheckStatus, list[str]]:
    """(status, reasons) of a champion re-measured against its evidence."""
    if device_differs and not bad_files:
        return "incomparable", device_differs
    reasons = bad_files + regressions
    return ("regressed" if reasons else "healthy"), reasons
