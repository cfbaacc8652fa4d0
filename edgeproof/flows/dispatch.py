"""Where each target of a ``quality-gate`` run is gated: in this process or on its runner.

Modes (the ``quality-gate`` flow's ``dispatch`` parameter; when it is left out, env
``EDGEPROOF_DISPATCH``, else ``auto``):

- in-process (``local``, and ``auto`` without a Prefect server): the targets run one after
  the other in this process, so on one machine two measurements never overlap.
  ``edgeproof run`` always passes ``local``: it measures on the machine it runs on.
- as deployments (``deployments``, and ``auto`` when ``PREFECT_API_URL`` names a server that
  has a ``gate-target/<target>`` deployment): each such target is started with
  ``run_deployment`` on its own work pool (the runner with its hardware), all of them at
  once; the others still run in-process. Measurements on one device are serialized by the
  tag concurrency limit ``edgeproof-device:<work_pool>`` (limit 1) on the ``measure`` task.

A dispatched target's verdict is read from MLflow (``edgeproof.tracking.target_results``).
A child that fails, is cancelled, or is not picked up within the timeout (its device
offline) gives that target an ``error`` result naming the flow run; the others are kept.
"""

from __future__ import annotations

import contextlib
import os
from typing import Literal, cast, get_args

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.futures import PrefectFuture
from prefect.settings import get_current_settings
from prefect.states import Cancelled

from edgeproof.errors import ConfigError, EdgeproofError
from edgeproof.flows.gate_target import gate_target
from edgeproof.pipeline.resolve import ResolvedInputs
from edgeproof.records import TargetResult
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.target_results import result_from_mlflow

Dispatch = Literal["auto", "local", "deployments"]
DISPATCH_MODES: tuple[str, ...] = get_args(Dispatch)


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
) -> TargetResult:
    """Run ``gate-target/<target>`` on its work pool, wait, and read its verdict from MLflow.

    Never raises for a child that failed or never ran: that target gets an error result."""
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
        return TargetResult.failed(target, why)
    if not state.is_completed():
        message = f": {state.message}" if state.message else ""
        return TargetResult.failed(target, f"{where} ended {state.name}{message}")
    get_run_logger().info("%s finished; reading its verdict from MLflow", where)
    store = MlflowStore(inputs.params.tracking)
    try:
        return result_from_mlflow(store, experiment_id, parent_run_id, target)
    except EdgeproofError as exc:
        return TargetResult.failed(target, f"{where}: {exc}")


def gate_all(
    inputs: ResolvedInputs,
    remote: list[str],
    experiment_id: str,
    parent_run_id: str,
    timeout_seconds: float,
) -> list[TargetResult]:
    """Every target's result, in ``inputs.targets`` order: remote ones started together
    first, then the local ones in-process, one after the other. A dispatch that raises
    costs only its own target's verdict."""
    logger = get_run_logger()
    futures: dict[str, PrefectFuture[TargetResult]] = {}
    for name in remote:
        logger.info("dispatching target %s to %s", name, gate_deployment(name))
        futures[name] = dispatch_target.submit(
            inputs, name, experiment_id, parent_run_id, timeout_seconds
        )
    results: dict[str, TargetResult] = {}
    for name in inputs.targets:
        if name not in futures:
            logger.info("gating target %s in-process", name)
            raw = gate_target(str(inputs.params_file), name, experiment_id, parent_run_id)
            results[name] = TargetResult.model_validate(raw)
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except Exception as exc:  # an unexpected failure of the dispatch itself
            reason = f"{gate_deployment(name)}: dispatch failed: {exc}"
            results[name] = TargetResult.failed(name, reason)
    return [results[name] for name in inputs.targets]
