"""Prefect flow ``quality-gate``: the whole pipeline run for one model.

resolve (params, task kind, model, data, lineage) -> data gate -> per target ``gate-target``
(optimize, measure, decide, select, track; in-process or dispatched, ``flows.dispatch``)
-> promote (register winners, move aliases) -> report (summary.md, verdict.json, MLflow and
Prefect artifacts). Returns the run's ``RunResult`` as JSON. Wiring only: decisions are in
``gates``, MLflow reads and writes in ``edgeproof.tracking``, rendering in ``edgeproof.report``.

``fail_on_block`` (set by the ``quality-gate/default`` deployment) makes the flow run end
Failed after the report is written when the status is ``blocked`` or ``error``, so
``prefect deployment run ... --watch`` exits non-zero. The CLI leaves it off and maps the
returned status to its exit code itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.runtime import flow_run

from edgeproof.data import datagate
from edgeproof.data import dataset as data_module
from edgeproof.data import feed as feed_module
from edgeproof.data.datagate import DataGateResult, validate_data
from edgeproof.errors import EdgeproofError
from edgeproof.flows.dispatch import Dispatch, dispatch_mode, gate_all, remote_targets
from edgeproof.flows.gate_target import internal_error
from edgeproof.flows.retry import TRACKING_RETRIES
from edgeproof.gates import data_suite
from edgeproof.gates.outcome import run_status
from edgeproof.pipeline.resolve import ResolvedInputs, resolve_inputs
from edgeproof.records import EXIT_CODES, Promotion, RunInfo, RunResult, TargetResult
from edgeproof.report.files import artifact_key, prefect_markdown, write_report
from edgeproof.runtime.env import apply_quiet_defaults
from edgeproof.tracking.abandoned import reap_abandoned_runs
from edgeproof.tracking.lineage import file_digest
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.pipeline_run import (
    champions_now,
    download_plots,
    finish_pipeline_run,
    log_data_gate,
    new_run_name,
    start_pipeline_run,
)
from edgeproof.tracking.promote import promote_winners
from edgeproof.tracking.run_log import end_failed


class GateNotPassed(Exception):
    """Ends a ``fail_on_block`` run Failed (after its report) when it did not pass."""


@task(name="open-tracking", cache_policy=NO_CACHE, **TRACKING_RETRIES)
def open_tracking(inputs: ResolvedInputs) -> tuple[str, dict[str, str | None]]:
    """The model's experiment (get or create) and the champions this run starts with.

    Idempotent, so retried: a server that is briefly away costs a retry, not the run.
    Runs a killed process left RUNNING in the experiment are ended FAILED here."""
    store = MlflowStore(inputs.params.tracking)
    model = inputs.params.model.name
    experiment_id = store.experiment(model)
    reaped = reap_abandoned_runs(store, experiment_id, now_ms=int(time.time() * 1000))
    if reaped:
        get_run_logger().warning(
            "ended %d abandoned MLflow run(s) FAILED: %s", len(reaped), ", ".join(reaped)
        )
    return experiment_id, champions_now(store, inputs.params.registry, model, list(inputs.targets))


@task(name="start-tracking", cache_policy=NO_CACHE, **TRACKING_RETRIES)
def start_tracking(
    inputs: ResolvedInputs,
    run_name: str,
    trigger: str,
    experiment_id: str,
    champions: dict[str, str | None],
) -> str:
    """Parent MLflow run (lineage tags, params file, datasets); its id. A retry takes up
    the run its first attempt opened (keyed by this flow run)."""
    return start_pipeline_run(
        MlflowStore(inputs.params.tracking),
        experiment_id,
        run_name,
        lineage=inputs.lineage,
        trigger=trigger,
        targets=list(inputs.targets),
        champions=champions,
        warnings=inputs.warnings,
        model_path=inputs.params.model.path,
        params_file=inputs.params_file,
        root=inputs.root,
        data_files={"eval": inputs.eval_data, "calibration": inputs.calibration_data},
        key=f"{flow_run.get_id()}/{run_name}",
    )


def data_gate_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """The data gate's Prefect cache key: everything its verdict depends on (the contents of
    the eval and calibration files, the ``data`` and ``model`` params, the model's inputs,
    the code that validates and its Great Expectations version). Unchanged, the stored
    verdict is reused instead of importing GX and validating again (~1.5 s a run)."""
    inputs: ResolvedInputs = parameters["inputs"]
    parts = [
        inputs.data_md5,
        inputs.params.data.model_dump_json(),
        inputs.params.model.model_dump_json(),
        repr(inputs.model_inputs),
        version("great_expectations"),
        *(file_digest(Path(module.__file__ or ""), "md5") for module in _DATA_GATE_CODE),
    ]
    return "edgeproof-data-gate-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


_DATA_GATE_CODE = (datagate, data_suite, data_module, feed_module)


@task(
    name="validate-data",
    cache_key_fn=data_gate_key,
    cache_expiration=timedelta(days=30),
    persist_result=True,
)
def validate(inputs: ResolvedInputs) -> DataGateResult:
    """Great Expectations on the eval and calibration data (cached by content: the state
    is ``Cached`` when an identical validation's verdict is reused; set
    ``PREFECT_TASKS_REFRESH_CACHE=true`` to validate again anyway)."""
    checks = inputs.params.data.checks
    if not checks.enabled:
        return DataGateResult(success=True)
    return validate_data(
        {"eval": inputs.load_eval(True), "calibration": inputs.load_calibration(True)},
        checks,
        inputs.task.num_classes(inputs.params),
        inputs.model_inputs,
    )


@task(name="track-data-gate", cache_policy=NO_CACHE, **TRACKING_RETRIES)
def track_data_gate(
    inputs: ResolvedInputs, parent_run_id: str, result: DataGateResult, reused: bool
) -> None:
    """The data gate's results on the parent MLflow run."""
    log_data_gate(MlflowStore(inputs.params.tracking), parent_run_id, result, reused)


@task(name="promote", cache_policy=NO_CACHE)
def promote(
    inputs: ResolvedInputs,
    run: RunInfo,
    results: list[TargetResult],
    champions: dict[str, str | None],
) -> list[Promotion]:
    store = MlflowStore(inputs.params.tracking)
    sources = {r.outcome.target: inputs.source(r.outcome.target) for r in results}
    return promote_winners(store, inputs.params.registry, run, results, champions, sources)


@task(name="report", cache_policy=NO_CACHE)
def report(
    inputs: ResolvedInputs, result: RunResult, report_dir: Path, results: list[TargetResult]
) -> Path:
    store = MlflowStore(inputs.params.tracking)
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_report(result, report_dir, download_plots(store, results, Path(scratch)))
    if result.run.mlflow_run_id:
        finish_pipeline_run(store, result.run.mlflow_run_id, folder, result.status)
    markdown = prefect_markdown((folder / "summary.md").read_text(encoding="utf-8"))
    create_markdown_artifact(
        markdown=markdown, key=artifact_key(result.run.model), description="edgeproof summary"
    )
    return folder


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

    ``dispatch``: where targets run (``flows.dispatch``). ``fail_on_block``: end Failed
    after the report unless the run passed. ``target_timeout_seconds``: how long a
    dispatched target may take, pick-up included."""
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
    results: list[TargetResult] = []
    warnings = inputs.warnings
    try:
        logger.info("validating data (eval, calibration) with Great Expectations")
        validated = validate(inputs, return_state=True)
        data_gate: DataGateResult = validated.result()
        reused = validated.name == "Cached"
        if reused:
            logger.info("data gate: verdict reused (same data, checks and code; Prefect cache)")
        track_data_gate(inputs, parent_id, data_gate, reused)
        if not data_gate.success:
            result = RunResult(
                run=run,
                status="error",
                exit_code=EXIT_CODES["error"],
                targets=(),
                warnings=warnings,
                error=data_gate.error_line(),
                data_failures=tuple(data_gate.failures),
            )
        else:
            remote = remote_targets(dispatch_mode(dispatch), list(inputs.targets))
            results = gate_all(inputs, remote, experiment_id, parent_id, target_timeout_seconds)
            outcomes = [r.outcome for r in results]
            logger.info("promoting winners")
            promotions = promote(inputs, run, results, champions)
            status = run_status(outcomes, promotions)
            result = RunResult(
                run=run,
                status=status,
                exit_code=EXIT_CODES[status],
                targets=tuple(outcomes),
                promotions=tuple(promotions),
                warnings=warnings,
            )
    except Exception as exc:  # a bug too: the run still ends with its report, never RUNNING
        expected = isinstance(exc, EdgeproofError)  # bad input, a refusal: its own line
        if not expected:
            logger.error(internal_error(exc))
        result = RunResult(
            run=run,
            status="error",
            exit_code=EXIT_CODES["error"],
            targets=() if expected else tuple(r.outcome for r in results),
            error=str(exc) if expected else internal_error(exc),
            warnings=warnings,
        )
    try:
        written = report(inputs, result, folder, results)
    except Exception:
        with contextlib.suppress(Exception):  # the store may be what failed
            end_failed(MlflowStore(inputs.params.tracking), parent_id)  # never left RUNNING
        raise
    logger.info("report written to %s (status %s)", written, result.status)
    if fail_on_block and result.status != "pass":
        why = f": {result.error}" if result.error else ""
        raise GateNotPassed(f"quality gate {result.status}{why} (report: {written})")
    return result.model_dump(mode="json")
