"""Register a target's winner and move the registry aliases, after everything is logged.

The winner becomes a new version of ``<model>.<target>`` with alias ``challenger``; alias
``champion`` moves to it only when it passed every gate (a winner, by definition, did).
With no winner nothing is registered and no alias moves: the champion stays where it was.
"""

from __future__ import annotations

import json

from edgeproof.config import RegistryConfig
from edgeproof.records import Promotion, RunInfo, TargetOutcome
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.run_log import MODEL_ARTIFACT_DIR


def promote(
    store: MlflowStore,
    registry: RegistryConfig,
    run: RunInfo,
    outcome: TargetOutcome,
    candidate_runs: dict[str, str],
) -> Promotion:
    """Register the winner (if any) and move ``challenger`` and ``champion``."""
    name = registry.registered_name(run.model, outcome.target)
    before = store.alias_version(name, registry.champion_alias)
    if outcome.winner is None:
        where = f"stays at version {before}" if before else "is not set"
        return Promotion(
            target=outcome.target,
            registered_model=name,
            champion_before=before,
            champion_after=before,
            reason=f"no candidate passed every gate; {registry.champion_alias} {where}",
        )
    winner = next(c for c in outcome.outcomes if c.candidate.name == outcome.winner)
    tags = {
        "edgeproof.run": run.run_name,
        "edgeproof.candidate": outcome.winner,
        "edgeproof.target": outcome.target,
        "edgeproof.gates": winner.verdict.status,
        "edgeproof.recipe": json.dumps(winner.candidate.recipe, sort_keys=True),
    }
    if run.lineage.git_sha:
        tags["git.sha"] = run.lineage.git_sha
    version = store.register(name, candidate_runs[outcome.winner], MODEL_ARTIFACT_DIR, tags)
    store.set_alias(name, registry.challenger_alias, version)
    store.set_alias(name, registry.champion_alias, version)
    return Promotion(
        target=outcome.target,
        registered_model=name,
        version=version,
        champion_before=before,
        champion_after=version,
        challenger=version,
        moved=True,
        reason=f"{outcome.winner} passed every gate: {outcome.reason}",
    )
