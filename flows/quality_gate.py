"""Prefect flow ``quality-gate``: the whole pipeline run for one model.

resolve (params, model, data, lineage) -> per target ``gate-target`` (optimize, measure,
decide, select, track) -> promote (register winners, move aliases) -> report (summary.md,
verdict.json, MLflow and Prefect artifacts). Targets run one after the other here: on one
machine two measurements must never overlap. Returns the run's ``RunResult`` as JSON.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from edgeproof.datagate import DataGateResult, validate_data
from edgeproof.errors import EdgeproofError
from edgeproof.records import (
    EXIT_CODES,
    Promotion,
    RunInfo,
    RunResult,
    RunStatus,
    TargetOutcome,
)
from edgeproof.report.files import write_report
from edgeproof.resolve import ResolvedInputs, resolve_inputs
from edgeproof.runtime_env import apply_quiet_defaults
from edgeproof.tracking.lineage import lineage_tags
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.promote import promote
from edgeproof.tracking.run_log import PLOTS_DIR
from flows.gate_target import gate_target


def run_status(outcomes: list[TargetOutcome], promotions: list[Promotion]) -> RunStatus:
    """error if any target erred or none could run; blocked if any gate blocked or a
    passing winner's champion move was refused (another run moved it meanwhile)."""
    statuses = {o.status for o in outcomes}
    if "error" in statuses or statuses <= {"unavailable"}:
        return "error"
    refused = any(p.refused for p in promotions)
    return "blocked" if "blocked" in statuses or refused else "pass"


def champions_now(inputs: ResolvedInputs) -> dict[str, str | None]:
    """Each target's champion version now: what its promotion will compare-and-set against."""
    store = MlflowStore(inputs.params.tracking)
    registry = inputs.params.registry
    return {
        target: store.alias_version(
            registry.registered_name(inputs.params.model.name, target), registry.champion_alias
        )
        for target in inputs.targets
    }


@task(name="open-tracking", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=3)
def open_tracking(inputs: ResolvedInputs) -> tuple[str, dict[str, str | None]]:
    """The model's experiment (get or create) and the champions this run starts with.

    Idempotent, so retried: a server that is briefly away costs a retry, not the run."""
    store = MlflowStore(inputs.params.tracking)
    return store.experiment(inputs.params.model.name), champions_now(inputs)


@task(name="start-tracking", cache_policy=NO_CACHE)
def start_tracking(
    inputs: ResolvedInputs,
    run_name: str,
    trigger: str,
    experiment_id: str,
    champions: dict[str, str | None],
) -> str:
    """Parent MLflow run (lineage tags, params file); its id.

    Not retried (a retry would create a second run): if logging to the new run fails
    (e.g. a full artifact disk) the run is ended FAILED, never left RUNNING."""
    store = MlflowStore(inputs.params.tracking)
    tags = {
        **lineage_tags(inputs.lineage),
        "edgeproof.level": "pipeline",
        "edgeproof.trigger": trigger,
        "edgeproof.targets": ",".join(inputs.targets),
        **{f"edgeproof.champion_at_start.{t}": v or "none" for t, v in champions.items()},
    }
    if inputs.warnings:
        tags["edgeproof.warnings"] = "; ".join(inputs.warnings)[:5000]
    run_id = store.start_run(experiment_id, run_name, tags=tags)
    try:
        store.log(
            run_id,
            params={"model.path": inputs.params.model.path, "targets": ",".join(inputs.targets)},
        )
        store.log_artifact(run_id, inputs.params_file)
    except EdgeproofError as exc:
        with contextlib.suppress(EdgeproofError):
            store.log(run_id, tags={"edgeproof.status": "error", "edgeproof.error": str(exc)})
        with contextlib.suppress(EdgeproofError):
            store.end(run_id, "FAILED")
        raise
    return run_id


@task(name="validate-data", cache_policy=NO_CACHE)
def validate(inputs: ResolvedInputs, parent_run_id: str) -> DataGateResult:
    """Great Expectations on the eval and calibration data; results logged to MLflow."""
    checks = inputs.params.data.checks
    if not checks.enabled:
        return DataGateResult(success=True)
    classifier = inputs.params.model.task == "classification"
    result = validate_data(
        {"eval": inputs.load_eval(True), "calibration": inputs.load_calibration(True)},
        checks,
        inputs.params.model.num_classes if classifier else None,
        inputs.model_inputs,
    )
    store = MlflowStore(inputs.params.tracking)
    store.log_text(parent_run_id, json.dumps(result.results, indent=1), "data_gate/gx_results.json")
    store.log(
        parent_run_id,
        metrics={"data_gate.failed_expectations": len(result.failures)},
        tags={"edgeproof.data_gate": "pass" if result.success else "fail"},
    )
    if not result.success:
        store.log_text(parent_run_id, "\n".join(result.failures) + "\n", "data_gate/failures.txt")
    return result


@task(name="promote", cache_policy=NO_CACHE)
def promote_winners(
    inputs: ResolvedInputs,
    run: RunInfo,
    results: list[dict[str, Any]],
    champions: dict[str, str | None],
) -> list[Promotion]:
    store = MlflowStore(inputs.params.tracking)
    registry = inputs.params.registry
    promotions = []
    for result in results:
        outcome = TargetOutcome.model_validate(result["outcome"])
        if outcome.status in ("pass", "blocked"):
            runs = result["candidate_runs"]
            champion = champions.get(outcome.target)
            promotions.append(promote(store, registry, run, outcome, runs, champion))
    return promotions


def _fetch_plots(store: MlflowStore, results: list[dict[str, Any]], dest: Path) -> list[Path]:
    """Download each target run's plots (they were drawn where the target ran)."""
    files = []
    for result in results:
        for name in result["outcome"].get("plots", []):
            local = store.client.download_artifacts(
                result["target_run"], f"{PLOTS_DIR}/{name}", str(dest)
            )
            files.append(Path(local))
    return files


@task(name="report", cache_policy=NO_CACHE)
def report(
    inputs: ResolvedInputs, result: RunResult, report_dir: Path, results: list[dict[str, Any]]
) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        plots = _fetch_plots(MlflowStore(inputs.params.tracking), results, Path(scratch))
        folder = write_report(result, report_dir, plots)
    markdown = (folder / "summary.md").read_text(encoding="utf-8")
    if result.run.mlflow_run_id:
        store = MlflowStore(inputs.params.tracking)
        store.log_artifact(result.run.mlflow_run_id, folder / "summary.md")
        store.log_artifact(result.run.mlflow_run_id, folder / "verdict.json")
        for png in sorted(folder.glob("*.png")):
            store.log_artifact(result.run.mlflow_run_id, png)
        store.log(result.run.mlflow_run_id, tags={"edgeproof.status": result.status})
        store.end(result.run.mlflow_run_id, "FAILED" if result.status == "error" else "FINISHED")
    key = re.sub(r"[^a-z0-9-]+", "-", f"edgeproof-{result.run.model}".lower())
    # a Prefect artifact cannot show the report's local images: drop those links there
    markdown = re.sub(r"\n!\[[^\]]*\]\([^)]*\)\n", "\n", markdown)
    create_markdown_artifact(markdown=markdown, key=key, description="edgeproof summary")
    return folder


def data_gate_error(failures: list[str]) -> str:
    """One line for a failed data gate: how many expectations failed, and the first."""
    first = failures[0] if failures else "no details"
    return (
        f"data gate: {len(failures)} expectation(s) failed (first: {first}); "
        "nothing was optimized or registered"
    )


def new_run_name(model: str, git_sha: str | None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{model}-{stamp}" + (f"-{git_sha[:7]}" if git_sha else "")


@flow(name="quality-gate", log_prints=True)
def quality_gate(
    params_file: str = "params.yaml",
    targets: list[str] | None = None,
    report_dir: str | None = None,
    trigger: str = "prefect",
) -> dict[str, Any]:
    """Run the quality gate for every selected target; returns the RunResult as JSON."""
    apply_quiet_defaults()
    logger = get_run_logger()
    inputs = resolve_inputs(Path(params_file), targets)
    run_name = new_run_name(inputs.params.model.name, inputs.lineage.git_sha)
    experiment_id, champions = open_tracking(inputs)
    parent_id = start_tracking(inputs, run_name, trigger, experiment_id, champions)
    run = RunInfo(
        run_name=run_name,
        model=inputs.params.model.name,
        mlflow_run_id=parent_id,
        mlflow_experiment_id=experiment_id,
        tracking_uri=MlflowStore(inputs.params.tracking).uri,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        trigger=trigger,
        lineage=inputs.lineage,
    )
    folder = Path(report_dir) if report_dir else inputs.root / inputs.params.report.dir
    results: list[dict[str, Any]] = []
    warnings = inputs.warnings
    try:
        data_gate = validate(inputs, parent_id)
        if not data_gate.success:
            result = RunResult(
                run=run,
                status="error",
                exit_code=2,
                targets=(),
                warnings=warnings,
                error=data_gate_error(data_gate.failures),
                data_failures=tuple(data_gate.failures),
            )
        else:
            for name in inputs.targets:
                logger.info("gating target %s", name)
                results.append(gate_target(str(inputs.params_file), name, experiment_id, parent_id))
            outcomes = [TargetOutcome.model_validate(r["outcome"]) for r in results]
            promotions = promote_winners(inputs, run, results, champions)
            status = run_status(outcomes, promotions)
            result = RunResult(
                run=run,
                status=status,
                exit_code=EXIT_CODES[status],
                targets=tuple(outcomes),
                promotions=tuple(promotions),
                warnings=warnings,
            )
    except EdgeproofError as exc:
        result = RunResult(
            run=run, status="error", exit_code=2, targets=(), error=str(exc), warnings=warnings
        )
    written = report(inputs, result, folder, results)
    logger.info("report written to %s (status %s)", written, result.status)
    return result.model_dump(mode="json")
