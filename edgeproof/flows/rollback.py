"""Prefect flow ``rollback``: move a target's ``champion`` back, audited.

The same compare-and-set move as ``edgeproof rollback``: to the previous champion, or to a
given version that passed its gates (any version with ``force``). Returns the recorded
``AliasEvent`` as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from edgeproof.params.model import load_params
from edgeproof.runtime.env import apply_quiet_defaults
from edgeproof.tracking.champion import rollback as rollback_champion
from edgeproof.tracking.mlflow_store import MlflowStore


@flow(name="rollback", log_prints=True)
def rollback(
    target: str,
    reason: str,
    to_version: str | None = None,
    force: bool = False,
    params_file: str = "params.yaml",
    model: str | None = None,
) -> dict[str, Any]:
    """Roll ``champion`` of ``<model>.<target>`` back; the audit event as JSON."""
    apply_quiet_defaults()
    params = load_params(Path(params_file))
    name = params.registry.registered_name(model or params.model.name, target)
    from prefect.runtime import flow_run

    event = rollback_champion(
        MlflowStore(params.tracking),
        params.registry,
        name,
        reason=reason,
        to_version=to_version,
        force=force,
        run=f"prefect:{flow_run.name}" if flow_run.name else None,
    )
    get_run_logger().info(
        "%s: champion %s -> %s (%s)", name, event.from_version, event.to_version, reason
    )
    return event.model_dump(mode="json")
