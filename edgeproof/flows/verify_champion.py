"""Prefect flow ``verify-champion``: is the deployed champion still what it was promoted as?

On the target's own runner, the current champion and the baseline it was judged against
(both downloaded from their MLflow runs) are measured again, interleaved, and compared with
the champion's recorded evidence: its files must hash as recorded, its speedup must not
have clearly fallen, and no gate may now clearly fail. A clear regression moves
``champion`` back to the previous champion (audited, with the reasons) unless
``rollback_on_regression`` is off. Meant to run on a schedule as a deployment. Wiring only:
``gates`` decides, ``edgeproof.tracking.recheck`` reads and writes MLflow.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from edgeproof.errors import TrackingError
from edgeproof.flows.gate_target import decide, measure_on_device
from edgeproof.flows.retry import TRACKING_RETRIES
from edgeproof.gates.champion import recheck_regressions
from edgeproof.gates.outcome import recheck_status
from edgeproof.measure.fingerprint import fingerprint_mismatch
from edgeproof.pipeline.resolve import ResolvedInputs, resolve_inputs
from edgeproof.records import CandidateSummary, ChampionRecheck, TargetOutcome
from edgeproof.report.recheck import recheck_markdown
from edgeproof.runtime.env import apply_quiet_defaults
from edgeproof.tracking.evidence import verify_evidence
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.recheck import (
    RecheckInputs,
    fetch_recheck_inputs,
    log_recheck,
    roll_back_regressed,
)


@task(name="fetch-champion", cache_policy=NO_CACHE, **TRACKING_RETRIES)
def fetch(inputs: ResolvedInputs, target: str, workdir: Path) -> RecheckInputs | None:
    """The champion, its evidence and its baseline; None without a champion."""
    store = MlflowStore(inputs.params.tracking)
    model, suffix = inputs.params.model.name, inputs.model.suffix
    return fetch_recheck_inputs(store, inputs.params.registry, model, target, suffix, workdir)


@task(name="log-recheck", cache_policy=NO_CACHE, **TRACKING_RETRIES)
def log(inputs: ResolvedInputs, result: ChampionRecheck, now: CandidateSummary | None) -> str:
    return log_recheck(MlflowStore(inputs.params.tracking), inputs.params.model.name, result, now)


def _judge_now(
    inputs: ResolvedInputs, target: str, fetched: RecheckInputs, workdir: Path
) -> tuple[list[str], list[str], TargetOutcome]:
    """File integrity problems, device differences from the evidence, and the champion
    judged now against its baseline."""
    champion, baseline = fetched.champion, fetched.baseline
    folder = champion.model_file.parent
    checks = verify_evidence(fetched.evidence, inputs.root, folder)
    bad_files = [c.line() for c in checks if c.what == "model" and not c.ok]
    measured = measure_on_device(inputs, target)(inputs, target, baseline, [champion], workdir)
    outcome = decide(inputs, target, baseline, [champion], [], measured)
    recorded = (fetched.evidence.get("environment") or {}).get("fingerprint") or {}
    raw = measured.raw.get(champion.name)
    now = raw.environment.get("fingerprint", {}) if raw else {}
    differs = fingerprint_mismatch(recorded, now, f"evidence of v{fetched.version}", "this run")
    return bad_files, differs, outcome


@flow(name="verify-champion", log_prints=True)
def verify_champion(
    target: str,
    params_file: str = "params.yaml",
    max_speedup_loss: float = 0.1,
    rollback_on_regression: bool = True,
) -> dict[str, Any]:
    """Re-measure the champion of ``target``; roll back on a clear regression."""
    apply_quiet_defaults()
    inputs = resolve_inputs(Path(params_file), [target])
    registry = inputs.params.registry
    name = registry.registered_name(inputs.params.model.name, target)
    workdir = Path(tempfile.mkdtemp(prefix=f"edgeproof-verify-{target}-"))
    try:
        fetched = fetch(inputs, target, workdir)
        if fetched is None:
            result = ChampionRecheck(
                target=target, registered_model=name, version=None, status="no-champion"
            )
            return result.model_dump(mode="json")
        bad_files, differs, outcome = _judge_now(inputs, target, fetched, workdir)
        mine = next(o for o in outcome.outcomes if o.candidate.name == fetched.champion.name)
        if mine.summary is None:
            raise TrackingError(f"{name} v{fetched.version}: could not be measured: {mine.error}")
        recorded = CandidateSummary.model_validate(fetched.evidence["summary"])
        regressions = recheck_regressions(
            recorded, mine.summary, mine.verdict.checks, max_speedup_loss
        )
        status, reasons = recheck_status(bad_files, regressions, differs)
        result = ChampionRecheck(
            target=target,
            registered_model=name,
            version=fetched.version,
            status=status,
            reasons=tuple(reasons),
            recorded_speedup=recorded.speedup,
            speedup_now=mine.summary.speedup,
            verdict_now=mine.verdict,
        )
        if status == "regressed" and rollback_on_regression:
            result = roll_back_regressed(MlflowStore(inputs.params.tracking), registry, result)
        run_id = log(inputs, result, mine.summary)
        result = result.model_copy(update={"mlflow_run_id": run_id})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    get_run_logger().info("verify-champion %s v%s: %s", name, result.version, result.status)
    create_markdown_artifact(
        markdown=recheck_markdown(result), key=f"verify-champion-{target}", description=name
    )
    return result.model_dump(mode="json")
