"""Prefect flow ``verify-champion``: is the deployed champion still what it was promoted as?

On the target's own runner, the current champion and the baseline it was judged against
(both downloaded from their MLflow runs) are measured again, interleaved, and compared with
the champion's recorded evidence: its files must hash as recorded, its speedup must not
have clearly fallen, and no gate may now clearly fail. A clear regression moves
``champion`` back to the previous champion (audited, with the reasons) unless
``rollback_on_regression`` is off. Meant to run on a schedule as a deployment.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from edgeproof.errors import RegistryConflict, RegistryRefused, TrackingError
from edgeproof.measure.fingerprint import fingerprint_mismatch
from edgeproof.records import Candidate, CandidateSummary, ChampionRecheck, TargetOutcome
from edgeproof.resolve import ResolvedInputs, resolve_inputs
from edgeproof.runtime_env import apply_quiet_defaults
from edgeproof.tracking.champion import rollback
from edgeproof.tracking.champion_model import fetch_champion, run_candidate
from edgeproof.tracking.evidence import EVIDENCE_FILE, verify_evidence
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.run_log import summary_metrics
from flows.gate_target import decide, measure_on_device
from gates.champion import recheck_regressions

Fetched = tuple[str, str, dict[str, Any], Candidate, Candidate]


@task(name="fetch-champion", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=3)
def fetch(inputs: ResolvedInputs, target: str, workdir: Path) -> Fetched | None:
    """(name, version, evidence, champion, its baseline), or None without a champion."""
    store = MlflowStore(inputs.params.tracking)
    suffix = inputs.model.suffix
    found = fetch_champion(
        store,
        inputs.params.registry,
        inputs.params.model.name,
        target,
        suffix,
        workdir,
        is_baseline=False,
    )
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
    return name, version, evidence, found.candidate, baseline


@task(name="log-recheck", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=3)
def log_recheck(
    inputs: ResolvedInputs, result: ChampionRecheck, now: CandidateSummary | None
) -> str:
    store = MlflowStore(inputs.params.tracking)
    experiment = store.experiment(inputs.params.model.name)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = store.start_run(
        experiment,
        f"verify-champion-{result.target}-v{result.version}-{stamp}",
        tags={
            "edgeproof.level": "verify-champion",
            "edgeproof.target": result.target,
            "edgeproof.registered_model": result.registered_model,
            "edgeproof.champion.version": result.version or "none",
            "edgeproof.status": result.status,
        },
    )
    store.log(run_id, metrics=summary_metrics(now) if now else None)
    store.log_text(run_id, result.model_dump_json(indent=2), "recheck.json")
    store.end(run_id)
    return run_id


def recheck_markdown(result: ChampionRecheck) -> str:
    """The result as markdown (Prefect artifact, CLI output)."""
    icon = {"healthy": "✅", "regressed": "❌", "no-champion": "➖", "incomparable": "⛔"}[
        result.status
    ]
    lines = [f"## verify-champion {result.registered_model}: {icon} {result.status}", ""]
    if result.recorded_speedup and result.speedup_now:
        was, now = result.recorded_speedup, result.speedup_now
        lines.append(
            f"Speedup recorded {was.value:.2f}x [{was.low:.2f}, {was.high:.2f}], "
            f"now {now.value:.2f}x [{now.low:.2f}, {now.high:.2f}]"
        )
    lines += [f"- {reason}" for reason in result.reasons]
    if result.rolled_back_to:
        lines.append(f"\n`champion` rolled back to v{result.rolled_back_to}")
    if result.rollback_refused:
        lines.append(f"\nNo rollback: {result.rollback_refused}")
    return "\n".join(lines) + "\n"


def _judge_now(
    inputs: ResolvedInputs, target: str, fetched: Fetched, workdir: Path
) -> tuple[list[str], list[str], TargetOutcome]:
    """File integrity problems, device differences from the evidence, and the champion
    judged now against its baseline."""
    _, version, evidence, champion, baseline = fetched
    folder = champion.model_file.parent
    bad_files = [
        c.line() for c in verify_evidence(evidence, inputs.root, folder) if c.what == "model"
    ]
    measured = measure_on_device(inputs, target)(inputs, target, baseline, [champion], workdir)
    outcome = decide(inputs, target, baseline, [champion], [], measured)
    recorded = (evidence.get("environment") or {}).get("fingerprint") or {}
    raw = measured.raw.get(champion.name)
    now = raw.environment.get("fingerprint", {}) if raw else {}
    differs = fingerprint_mismatch(recorded, now, f"evidence of v{version}", "this run")
    return [b for b in bad_files if not b.startswith("ok")], differs, outcome


@flow(name="verify-champion", log_prints=True)
def verify_champion(
    target: str,
    params_file: str = "params.yaml",
    max_speedup_loss: float = 0.1,
    rollback_on_regression: bool = True,
) -> dict[str, Any]:
    """Re-measure the champion of ``target``; roll back on a clear regression."""
    apply_quiet_defaults()
    logger = get_run_logger()
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
        version, evidence, champion = fetched[1], fetched[2], fetched[3]
        bad_files, differs, outcome = _judge_now(inputs, target, fetched, workdir)
        mine = next(o for o in outcome.outcomes if o.candidate.name == champion.name)
        if mine.summary is None:
            raise TrackingError(f"{name} v{version}: could not be measured: {mine.error}")
        recorded = CandidateSummary.model_validate(evidence["summary"])
        reasons = bad_files + recheck_regressions(
            recorded, mine.summary, mine.verdict.checks, max_speedup_loss
        )
        status = "regressed" if reasons else "healthy"
        if differs and not bad_files:  # another device: a "regression" would be false
            status, reasons = "incomparable", differs
        result = ChampionRecheck(
            target=target,
            registered_model=name,
            version=version,
            status=status,
            reasons=tuple(reasons),
            recorded_speedup=recorded.speedup,
            speedup_now=mine.summary.speedup,
            verdict_now=mine.verdict,
        )
        if status == "regressed" and rollback_on_regression:
            result = _roll_back(inputs, result)
        run_id = log_recheck(inputs, result, mine.summary)
        result = result.model_copy(update={"mlflow_run_id": run_id})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    logger.info("verify-champion %s v%s: %s", name, result.version, result.status)
    create_markdown_artifact(
        markdown=recheck_markdown(result), key=f"verify-champion-{target}", description=name
    )
    return result.model_dump(mode="json")


def _roll_back(inputs: ResolvedInputs, result: ChampionRecheck) -> ChampionRecheck:
    store = MlflowStore(inputs.params.tracking)
    try:
        event = rollback(
            store,
            inputs.params.registry,
            result.registered_model,
            reason="verify-champion: " + "; ".join(result.reasons),
            run=f"verify-champion:{result.target}",
        )
    except (RegistryRefused, RegistryConflict) as exc:
        return result.model_copy(update={"rollback_refused": str(exc)})
    return result.model_copy(update={"rolled_back_to": event.to_version})
