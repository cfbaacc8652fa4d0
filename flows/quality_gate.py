"""Prefect flow ``quality-gate``: the whole pipeline run for one model.

resolve (params, model, data, lineage) -> per target ``gate-target`` (optimize, measure,
decide, select, track) -> promote (register winners, move aliases) -> report (summary.md,
verdict.json, MLflow and Prefect artifacts). Returns the run's ``RunResult`` as JSON.

Where each target runs (``dispatch``, default ``auto``; env ``EDGEPROOF_DISPATCH``):

- in-process (``local``, and ``auto`` without a Prefect server, i.e. the ephemeral default
  of ``edgeproof run``): the targets run one after the other in this process, so on one
  machine two measurements never overlap.
- as deployments (``deployments``, and ``auto`` when ``PREFECT_API_URL`` names a server that
  has a ``gate-target/<target>`` deployment): each such target is started with
  ``run_deployment`` on its own work pool (the runner with its hardware), all of them at
  once; the others still run in-process. Measurements on one device are serialized by the
  tag concurrency limit ``edgeproof-device:<work_pool>`` (limit 1) on the ``measure`` task.

Collecting a dispatched target's verdict: the parent reads it from MLflow, not from a
Prefect result. Every child already logs its target run under the parent's MLflow run
(``target_outcome.json`` and one child run per candidate), and MLflow is the one store every
runner must reach anyway; Prefect results would need storage that every device and the
parent share (a pickle by default) and would duplicate the record. A child that fails, is
cancelled, or is not picked up within ``target_timeout_seconds`` (its device offline) gives
that target an ``error`` outcome naming the flow run; the other targets' verdicts are kept.

``fail_on_block`` (set by the ``quality-gate/default`` deployment) makes the flow run end
Failed after the report is written when the status is ``blocked`` or ``error``, so
``prefect deployment run ... --watch`` exits non-zero. The CLI leaves it off and maps the
returned status to its exit code itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.futures import PrefectFuture
from prefect.settings import get_current_settings
from prefect.states import Cancelled

from edgeproof.datagate import DataGateResult, validate_data
from edgeproof.errors import ConfigError, EdgeproofError
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


Dispatch = Literal["auto", "local", "deployments"]
DISPATCH_MODES: tuple[str, ...] = get_args(Dispatch)
TARGET_OUTCOME_FILE = "target_outcome.json"  # written by log_target in the target run


class GateNotPassed(Exception):
    """Ends a ``fail_on_block`` run Failed (after its report) when it did not pass."""


def gate_deployment(target: str) -> str:
    """The ``gate-target`` deployment of a target: named after it (see prefect.yaml)."""
    return f"gate-target/{target}"


def dispatch_mode(requested: str | None) -> Dispatch:
    """The parameter, else env ``EDGEPROOF_DISPATCH``, else ``auto``; checked."""
    mode = requested or os.environ.get("EDGEPROOF_DISPATCH") or "auto"
    if mode not in DISPATCH_MODES:
        raise ConfigError(f"dispatch: {mode!r} is not one of {', '.join(DISPATCH_MODES)}")
    return cast(Dispatch, mode)


def remote_targets(mode: Dispatch, targets: list[str]) -> list[str]:
    """The targets to start as deployments; the others run in this process.

    ``auto`` dispatches only against a real server (``PREFECT_API_URL`` set) and only the
    targets that have a deployment; ``deployments`` requires both."""
    if mode == "local":
        return []
    if not get_current_settings().api.url:
        if mode == "deployments":
            raise ConfigError(
                "dispatch=deployments needs a Prefect server: set PREFECT_API_URL "
                "(e.g. http://127.0.0.1:4200/api)"
            )
        return []
    found = []
    with get_client(sync_client=True) as client:
        for target in targets:
            try:
                client.read_deployment_by_name(gate_deployment(target))
            except ObjectNotFound:
                if mode == "deployments":
                    raise ConfigError(
                        f"dispatch=deployments: no deployment {gate_deployment(target)} "
                        "(run `prefect deploy --all`)"
                    ) from None
                continue
            found.append(target)
    return found


def error_result(target: str, reason: str) -> dict[str, Any]:
    """A target result for a child that gave no verdict: ``error``, nothing to promote."""
    outcome = TargetOutcome(target=target, available=True, reason=reason, status="error")
    return {"outcome": outcome.model_dump(mode="json"), "target_run": None, "candidate_runs": {}}


def result_from_mlflow(
    store: MlflowStore, experiment_id: str, parent_run_id: str, target: str
) -> dict[str, Any]:
    """A dispatched target's result as ``gate_target`` returns it, read from its MLflow runs:
    the newest target run of ``target`` under the parent run, its outcome file and the
    candidate runs under it."""
    query = (
        f"tags.`mlflow.parentRunId` = '{parent_run_id}' and "
        f"tags.`edgeproof.level` = 'target' and tags.`edgeproof.target` = '{target}'"
    )
    found = store.client.search_runs(
        [experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"]
    )
    if not found:
        raise EdgeproofError(f"{target}: the child run logged no target run to MLflow")
    target_run = found[0].info.run_id
    with tempfile.TemporaryDirectory(prefix="edgeproof-collect-") as scratch:
        path = store.download(target_run, TARGET_OUTCOME_FILE, Path(scratch))
        outcome = TargetOutcome.model_validate_json(path.read_text(encoding="utf-8"))
    children = store.client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{target_run}'", max_results=1000
    )
    runs = {
        r.data.tags["edgeproof.candidate"]: r.info.run_id
        for r in children
        if "edgeproof.candidate" in r.data.tags
    }
    missing = {o.candidate.name for o in outcome.outcomes} - set(runs)
    if missing:
        raise EdgeproofError(f"{target}: no MLflow run for candidate(s) {sorted(missing)}")
    return {
        "outcome": outcome.model_dump(mode="json"),
        "target_run": target_run,
        "candidate_runs": runs,
    }


def _cancel(flow_run: FlowRun, why: str) -> None:
    """Cancel a child that never finished, so it does not run later under a closed parent."""
    with contextlib.suppress(Exception), get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run.id, Cancelled(message=why), force=True)


@task(name="dispatch-target", cache_policy=NO_CACHE)
def dispatch_target(
    inputs: ResolvedInputs,
    target: str,
    experiment_id: str,
    parent_run_id: str,
    timeout_seconds: float,
) -> dict[str, Any]:
    """Run ``gate-target/<target>`` on its work pool, wait, and read its verdict from MLflow.

    Never raises for a child that failed or never ran: that target gets an error outcome."""
    logger = get_run_logger()
    name = gate_deployment(target)
    child = run_deployment(
        name,
        parameters={
            "params_file": str(inputs.params_file),
            "target": target,
            "experiment_id": experiment_id,
            "parent_run_id": parent_run_id,
        },
        timeout=timeout_seconds,
        poll_interval=1,
        flow_run_name=f"{target}-{parent_run_id[:8]}",
    )
    where = f"{name} flow run {child.name} ({child.id}) on pool {child.work_pool_name}"
    state = child.state
    if state is None or not state.is_final():
        why = f"{where} did not finish within {timeout_seconds:.0f} s (its runner offline?)"
        _cancel(child, why)
        return error_result(target, why)
    if not state.is_completed():
        message = f": {state.message}" if state.message else ""
        return error_result(target, f"{where} ended {state.name}{message}")
    logger.info("%s finished; reading its verdict from MLflow", where)
    store = MlflowStore(inputs.params.tracking)
    try:
        return result_from_mlflow(store, experiment_id, parent_run_id, target)
    except EdgeproofError as exc:
        return error_result(target, f"{where}: {exc}")


def gate_all(
    inputs: ResolvedInputs,
    remote: list[str],
    experiment_id: str,
    parent_run_id: str,
    timeout_seconds: float,
) -> list[dict[str, Any]]:
    """Every target's result, in ``inputs.targets`` order: remote ones started together
    first, then the local ones in-process, one after the other. A dispatch that raises
    costs only its own target's verdict."""
    logger = get_run_logger()
    futures: dict[str, PrefectFuture[dict[str, Any]]] = {}
    for name in remote:
        logger.info("dispatching target %s to %s", name, gate_deployment(name))
        futures[name] = dispatch_target.submit(
            inputs, name, experiment_id, parent_run_id, timeout_seconds
        )
    results: dict[str, dict[str, Any]] = {}
    for name in inputs.targets:
        if name not in futures:
            logger.info("gating target %s in-process", name)
            results[name] = gate_target(str(inputs.params_file), name, experiment_id, parent_run_id)
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except Exception as exc:  # an unexpected failure of the dispatch itself
            results[name] = error_result(name, f"{gate_deployment(name)}: dispatch failed: {exc}")
    return [results[name] for name in inputs.targets]


@flow(name="quality-gate", log_prints=True)
def quality_gate(
    params_file: str = "params.yaml",
    targets: list[str] | None = None,
    report_dir: str | None = None,
    trigger: str = "prefect",
    dispatch: Dispatch | None = None,
    fail_on_block: bool = False,
    target_timeout_seconds: float = 3600.0,
) -> dict[str, Any]:
    """Run the quality gate for every selected target; returns the RunResult as JSON.

    ``dispatch``: where targets run (module docstring). ``fail_on_block``: end Failed after
    the report unless the run passed. ``target_timeout_seconds``: how long a dispatched
    target may take, pick-up included."""
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
            remote = remote_targets(dispatch_mode(dispatch), list(inputs.targets))
            results = gate_all(inputs, remote, experiment_id, parent_id, target_timeout_seconds)
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
    if fail_on_block and result.status != "pass":
        why = f": {result.error}" if result.error else ""
        raise GateNotPassed(f"quality gate {result.status}{why} (report: {written})")
    return result.model_dump(mode="json")
