"""Register a target's winner and move the registry aliases, after everything is logged.

The winner becomes a new version of ``<model>.<target>`` with alias ``challenger``; alias
``champion`` moves to it only when it passed every gate (a winner, by definition, did) and
the champion is still the one this run started with (compare-and-set, ``move_champion``).
A foreign registry lock (``alias_lock``) refuses the move the same way, naming the lock; a
name another user holds refuses the registration in one line (``ForeignName``).
With no winner nothing is registered and no alias moves: the champion stays where it was,
unless the target falls back to its baseline (``registry.fallback_to_baseline``, the
decision in ``gates.outcome.fallback_baseline``): no optimized candidate passed but the
baseline passed every quality gate, so the baseline is registered and promoted like a
winner, under the same champion rules, its version tagged ``edgeproof.fallback`` and every
reason (audit event, promotion) starting with ``FALLBACK_REASON``.
A winner "kept" out by the stable-champion rule (same source, not clearly better) registers
nothing either, and the history records that the champion was kept, and why.
"""

from __future__ import annotations

import json

from edgeproof.config import RegistryConfig
from edgeproof.errors import RegistryConflict, TrackingError
from edgeproof.gates.champion_policy import SourceKey
from edgeproof.gates.outcome import (
    FALLBACK_REASON,
    fallback_baseline,
    no_fallback_reason,
    wants_promotion,
)
from edgeproof.records import Promotion, RunInfo, TargetOutcome, TargetResult
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.access import ForeignName
from edgeproof.tracking.champion import keep_champion, move_champion
from edgeproof.tracking.champion_model import source_tags
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.names import foreign_model
from edgeproof.tracking.run_log import MODEL_ARTIFACT_DIR


def promote(
    store: MlflowStore,
    registry: RegistryConfig,
    run: RunInfo,
    outcome: TargetOutcome,
    candidate_runs: dict[str, str],
    champion_at_start: str | None,
    source: SourceKey | None = None,
) -> Promotion:
    """Register the winner (if any) and move ``challenger`` and ``champion``; the version
    records ``source`` (what it was made from) for the next run's stable-champion rule."""
    name = registry.registered_name(run.model, outcome.target)
    before = champion_at_start
    where = f"stays at version {before}" if before else "is not set"
    fallback = fallback_baseline(outcome, registry.fallback_to_baseline)
    chosen = outcome.winner or fallback
    prefix = f"{FALLBACK_REASON}; " if fallback else ""
    why_not = None
    if chosen is None:
        why_not = f"{outcome.reason or 'no candidate passed every gate'}; "
        no_fallback = no_fallback_reason(outcome, registry.fallback_to_baseline)
        why_not += f"{no_fallback}; " if no_fallback else ""
        why_not += f"{registry.champion_alias} {where}"
    elif outcome.champion is not None and outcome.champion.status != "not-worse":
        held = outcome.champion.status in ("identical", "kept")
        kept = "nothing registered" if held else "not promoted"
        why_not = f"{prefix}{outcome.champion.reason}; {kept}, {registry.champion_alias} {where}"
        if outcome.champion.status == "kept" and before is not None:
            keep_champion(store, registry, name, champion=before, run=run.run_name, reason=why_not)
    if why_not is not None:
        return Promotion(
            target=outcome.target,
            registered_model=name,
            champion_before=before,
            champion_after=before,
            reason=why_not,
        )
    winner = next(c for c in outcome.outcomes if c.candidate.name == chosen)
    tags = {
        tagnames.RUN: run.run_name,
        tagnames.CANDIDATE: chosen,
        tagnames.TARGET: outcome.target,
        tagnames.GATES: winner.verdict.status,
        tagnames.PRECISION: winner.candidate.precision,
        tagnames.RECIPE: json.dumps(winner.candidate.recipe, sort_keys=True),
    }
    if run.lineage.git_sha:
        tags["git.sha"] = run.lineage.git_sha
    if source is not None:
        tags |= source_tags(source)
    if fallback:
        tags[tagnames.FALLBACK] = FALLBACK_REASON
    try:
        version = store.register(name, candidate_runs[chosen], MODEL_ARTIFACT_DIR, tags)
    except TrackingError:
        refused = foreign_model(store, name)  # e.g. another user created the name first
        if refused is not None:
            raise refused from None
        raise
    store.set_alias(name, registry.challenger_alias, version)
    if fallback:
        reason = (
            f"{FALLBACK_REASON} ({outcome.reason}); the baseline {fallback} passed every "
            "quality gate"
        )
    else:
        reason = f"{outcome.winner} passed every gate: {outcome.reason}"
    if outcome.champion is not None:
        reason += f"; {outcome.champion.reason}"
    try:
        move_champion(
            store,
            registry,
            name,
            to_version=version,
            expected=before,
            action="promote",
            run=run.run_name,
            reason=reason,
        )
    except (RegistryConflict, ForeignName) as exc:  # another run moved it; a foreign lock
        return Promotion(
            target=outcome.target,
            registered_model=name,
            version=version,
            champion_before=before,
            champion_after=store.alias_version(name, registry.champion_alias),
            challenger=version,
            refused=True,
            reason=f"{prefix}{exc}",
        )
    return Promotion(
        target=outcome.target,
        registered_model=name,
        version=version,
        champion_before=before,
        champion_after=version,
        challenger=version,
        moved=True,
        reason=reason,
    )


def promote_winners(
    store: MlflowStore,
    registry: RegistryConfig,
    run: RunInfo,
    results: list[TargetResult],
    champions: dict[str, str | None],
    sources: dict[str, SourceKey] | None = None,
) -> list[Promotion]:
    """Register (and, where it passed, promote) each target's winner; one record each."""
    return [
        promote(
            store,
            registry,
            run,
            result.outcome,
            result.candidate_runs,
            champions.get(result.outcome.target),
            (sources or {}).get(result.outcome.target),
        )
        for result in results
        if wants_promotion(result.outcome)
    ]
