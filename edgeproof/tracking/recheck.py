"""MLflow side of verify-champion: the champion, its evidence and its baseline; the result.

The champion and the baseline it was judged against are downloaded from their MLflow runs
(the baseline run sits beside the champion's candidate run), so both can be measured again
on this runner. The re-check is logged as its own run (level ``verify-champion``); a wanted
rollback moves ``champion`` back through the audited compare-and-set move.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeproof.config import RegistryConfig
from edgeproof.errors import RegistryConflict, RegistryRefused, TrackingError
from edgeproof.records import Candidate, CandidateSummary, ChampionRecheck
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.champion import rollback
from edgeproof.tracking.champion_model import fetch_champion, run_candidate
from edgeproof.tracking.evidence import EVIDENCE_FILE
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.run_log import summary_metrics


@dataclass(frozen=True)
class RecheckInputs:
    """The champion to re-check: registry name and version, evidence, files, baseline."""

    registered_model: str
    version: str
    evidence: dict[str, Any]
    champion: Candidate
    baseline: Candidate


def fetch_recheck_inputs(
    store: MlflowStore,
    registry: RegistryConfig,
    model: str,
    target: str,
    suffix: str,
    workdir: Path,
) -> RecheckInputs | None:
    """The champion of ``model`` on ``target`` with its evidence and baseline; None if unset."""
    found = fetch_champion(store, registry, model, target, suffix, workdir, is_baseline=False)
    if found is None:
        return None
    name, version, run_id = found.registered_model, found.version, found.run_id
    evidence = json.loads(store.download(run_id, EVIDENCE_FILE, workdir).read_text("utf-8"))
    baseline_run = store.baseline_beside(run_id)
    if baseline_run is None:
        raise TrackingError(f"{name} v{version}: no baseline run beside its run {run_id}")
    baseline = run_candidate(
        store,
        baseline_run,
        target,
        suffix,
        name="baseline",
        recipe={"mlflow_run": baseline_run},
        precision="fp32",
        workdir=workdir,
    )
    return RecheckInputs(name, version, evidence, found.candidate, baseline)


def log_recheck(
    store: MlflowStore, model: str, result: ChampionRecheck, now: CandidateSummary | None
) -> str:
    """The re-check as its own run in the model's experiment; its id."""
    experiment = store.experiment(model)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = store.start_run(
        experiment,
        f"verify-champion-{result.target}-v{result.version}-{stamp}",
        tags={
            tagnames.LEVEL: tagnames.VERIFY_LEVEL,
            tagnames.TARGET: result.target,
            tagnames.REGISTERED_MODEL: result.registered_model,
            tagnames.CHAMPION_VERSION: result.version or "none",
            tagnames.STATUS: result.status,
        },
    )
    store.log(run_id, metrics=summary_metrics(now) if now else None)
    store.log_text(run_id, result.model_dump_json(indent=2), "recheck.json")
    store.end(run_id)
    return run_id


def roll_back_regressed(
    store: MlflowStore, registry: RegistryConfig, result: ChampionRecheck
) -> ChampionRecheck:
    """``champion`` moved back after a regression; a refused move is recorded, not raised."""
    try:
        event = rollback(
            store,
            registry,
            result.registered_model,
            reason="verify-champion: " + "; ".join(result.reasons),
            run=f"verify-champion:{result.target}",
        )
    except (RegistryRefused, RegistryConflict) as exc:
        return result.model_copy(update={"rollback_refused": str(exc)})
    return result.model_copy(update={"rolled_back_to": event.to_version})
