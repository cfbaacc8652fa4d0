"""Is the winner worse than the current champion, beyond noise?

Both were measured in the same run on the same machine, interleaved, with the champion as
the baseline: ``summary.speedup`` is champion median / winner median and
``summary.accuracy_drop`` is champion accuracy minus winner accuracy, each with its CI.
The winner is "worse" only when a CI lies wholly past the tolerance; an inconclusive
comparison is within noise, so it is "not-worse". A not-worse winner made from the
champion's own source is a re-roll of equal recipes: it is "kept" out unless clearly better
(``gates.champion_policy``), so unchanged runs do not move the champion on noise.
"""

from __future__ import annotations

from edgeproof.config import ChampionCompare
from edgeproof.gates.champion_policy import SourceKey, decide_champion
from edgeproof.gates.checks import ci_check
from edgeproof.gates.objectives import OBJECTIVES, Objective
from edgeproof.records import CandidateSummary, ChampionComparison, Check, TargetOutcome


def champion_checks(summary: CandidateSummary, config: ChampionCompare) -> list[Check]:
    """Speed (and accuracy, with labels) of the winner relative to the champion."""
    checks = []
    if summary.speedup is not None:
        checks.append(
            ci_check(
                "champion.max_slowdown",
                "speedup vs champion",
                summary.speedup,
                1.0 - config.max_slowdown,
                "min",
                "x",
            )
        )
    if summary.accuracy_drop is not None:
        checks.append(
            ci_check(
                "champion.max_accuracy_drop",
                "accuracy drop vs champion",
                summary.accuracy_drop,
                config.max_accuracy_drop,
                "max",
                "pt",
            )
        )
    return checks


def compare_with_champion(
    winner: str,
    summary: CandidateSummary,
    registered_model: str,
    champion_version: str,
    config: ChampionCompare,
) -> ChampionComparison:
    """The comparison record: "worse" when any check fails, else "not-worse"."""
    checks = champion_checks(summary, config)
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        status = "worse"
        why = "; ".join(c.message for c in failed)
        reason = f"{winner} is worse than champion v{champion_version}: {why}"
    else:
        status = "not-worse"
        shown = "; ".join(c.message for c in checks) or "no comparable quantity"
        reason = f"{winner} is not worse than champion v{champion_version} beyond noise: {shown}"
    return ChampionComparison(
        registered_model=registered_model,
        champion_version=champion_version,
        status=status,
        checks=tuple(checks),
        summary=summary,
        reason=reason,
    )


def recheck_regressions(
    recorded: CandidateSummary,
    now: CandidateSummary,
    checks_now: tuple[Check, ...],
    max_speedup_loss: float,
) -> list[str]:
    """Why the champion, re-measured now, clearly regressed from its recorded evidence.

    Both speedups are against the same baseline model, so a slower machine cancels out;
    a regression needs the whole new CI below the recorded lower bound times
    ``1 - max_speedup_loss``, or a gate that now clearly fails (not an inconclusive one).
    """
    reasons = []
    if recorded.speedup is not None and now.speedup is not None:
        floor = recorded.speedup.low * (1.0 - max_speedup_loss)
        if now.speedup.high < floor:
            was, got = recorded.speedup, now.speedup
            reasons.append(
                f"speedup fell from {was.value:.2f}x [{was.low:.2f}, {was.high:.2f}] to "
                f"{got.value:.2f}x [{got.low:.2f}, {got.high:.2f}] (< {floor:.2f}x)"
            )
    reasons += [f"{c.name} now fails: {c.message}" for c in checks_now if c.status == "fail"]
    return reasons


def judge_against_champion(
    outcome: TargetOutcome,
    rematch: TargetOutcome,
    winner: str,
    registered_model: str,
    champion_version: str,
    config: ChampionCompare,
    now: SourceKey,
    champion_source: SourceKey | None,
    objective: Objective,
) -> TargetOutcome:
    """``outcome`` with the winner's comparison to the champion; a clear regression blocks.

    ``rematch``: the winner judged with the champion as its baseline (same run, machine).
    A winner that could not be compared makes the target ``error`` with the reason.
    ``now`` / ``champion_source``: what this run's and the champion's files were made from.
    """
    mine = next((o for o in rematch.outcomes if o.candidate.name == winner), None)
    if mine is None or mine.summary is None:
        why = (mine.error if mine else None) or rematch.reason or "not measured"
        versus = ChampionComparison(
            registered_model=registered_model,
            champion_version=champion_version,
            status="error",
            reason=f"could not compare {winner} with champion v{champion_version}: {why}",
        )
        return outcome.model_copy(
            update={"champion": versus, "status": "error", "reason": versus.reason}
        )
    versus = compare_with_champion(winner, mine.summary, registered_model, champion_version, config)
    if versus.status == "not-worse":
        versus = hold_if_same_source(versus, winner, now, champion_source, config, objective)
    update: dict[str, object] = {"champion": versus}
    if versus.status == "worse":
        update["status"] = "blocked"
    return outcome.model_copy(update=update)


def hold_if_same_source(
    versus: ChampionComparison,
    winner: str,
    now: SourceKey,
    champion_source: SourceKey | None,
    config: ChampionCompare,
    objective: Objective,
) -> ChampionComparison:
    """A not-worse comparison, "kept" when the source is the champion's and the winner is
    not clearly better on ``objective`` (its whole paired CI above the tolerance)."""
    assert versus.summary is not None
    latency = OBJECTIVES[objective].sampled  # the sampled objectives are the latencies
    decision = decide_champion(
        winner,
        versus.champion_version,
        now,
        champion_source,
        gain=versus.summary.speedup if latency else None,
        quantity="speedup" if latency else objective.replace("_", " "),
        tolerance=config.same_source_tolerance,
        max_slowdown=config.max_slowdown,
        max_accuracy_drop=config.max_accuracy_drop,
    )
    if decision.move:
        return versus.model_copy(update={"reason": f"{versus.reason}; {decision.reason}"})
    return versus.model_copy(update={"status": "kept", "reason": decision.reason})


def identical_to_champion(
    outcome: TargetOutcome,
    registered_model: str,
    champion_version: str,
    candidate: str | None = None,
) -> TargetOutcome:
    """``outcome`` whose winner (or ``candidate``: a fallback baseline) has the champion's
    bytes: nothing to compare or promote."""
    versus = ChampionComparison(
        registered_model=registered_model,
        champion_version=champion_version,
        status="identical",
        reason=f"{candidate or outcome.winner} is byte-identical to champion v{champion_version}",
    )
    return outcome.model_copy(update={"champion": versus})


def judge_fallback_against_champion(
    outcome: TargetOutcome,
    rematch: TargetOutcome,
    baseline: str,
    registered_model: str,
    champion_version: str,
    config: ChampionCompare,
    now: SourceKey,
    champion_source: SourceKey | None,
    objective: Objective,
) -> TargetOutcome:
    """``outcome`` (no optimized candidate passed) with its baseline's comparison to the
    champion, by the winner's rules (``judge_against_champion``: worse, kept from the same
    source unless clearly better, not-worse). The target's status and reason stay: it is
    blocked already, and a comparison that could not be made only leaves the champion where
    it is (status ``error`` in the comparison), it does not fail the target."""
    judged = judge_against_champion(
        outcome,
        rematch,
        baseline,
        registered_model,
        champion_version,
        config,
        now,
        champion_source,
        objective,
    )
    return judged.model_copy(update={"status": outcome.status, "reason": outcome.reason})


def prefer_champion_twin(outcome: TargetOutcome, twin: str, objective: Objective) -> TargetOutcome:
    """``outcome`` with the champion's twin (``gates.outcome.champion_twin``) as winner."""
    return outcome.model_copy(
        update={
            "winner": twin,
            "reason": f"{twin} is the champion's bytes and within noise of {outcome.winner} "
            f"on {objective}: a tie goes to the champion ({outcome.reason})",
        }
    )
