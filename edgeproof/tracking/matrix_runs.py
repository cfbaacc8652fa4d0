"""Read a model's candidate runs back from MLflow as framework-matrix cells.

``collect_matrix`` reads the model's experiment (experiment name = model name), keeps the
candidate runs that carry a device tag and a ``latency_p50_ms`` metric and, for each
(device, target, candidate), only the most recent run (by start time), so a re-measured
recipe replaces its old numbers; ``gates.framework_matrix`` picks each device's winner.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from edgeproof.gates.framework_matrix import Cell, Matrix, build_matrix
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.mlflow_store import mlflow_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient

P50 = "latency_p50_ms"
PAGE_SIZE = 1000


def collect_matrix(client: MlflowClient, model: str, page_size: int = PAGE_SIZE) -> Matrix:
    """Read the candidate runs of experiment ``model`` and build its matrix.

    No experiment, or no run with a device tag and a positive p50, gives a matrix without
    devices. MLflow failures are raised as one-line ``TrackingError``.
    """
    with mlflow_errors(f"read the runs of experiment {model!r}"):
        experiment = client.get_experiment_by_name(model)
        runs = [] if experiment is None else list(_candidate_runs(client, experiment, page_size))
    latest: dict[tuple[str, str, str], tuple[Cell, str]] = {}
    counts: dict[str, int] = {}
    for run in runs:
        parsed = _cell(run)
        if parsed is None:
            continue
        cell, device, name = parsed
        counts[device] = counts.get(device, 0) + 1
        key = (device, cell.target, cell.candidate)
        kept = latest.get(key)
        if kept is None or (cell.when, cell.run_id) > (kept[0].when, kept[0].run_id):
            latest[key] = (cell, name)
    by_device: dict[str, list[tuple[Cell, str]]] = {}
    for (device, _, _), entry in latest.items():
        by_device.setdefault(device, []).append(entry)
    return build_matrix(model, by_device, counts)


def _candidate_runs(client: MlflowClient, experiment: Any, page_size: int) -> Iterator[Any]:
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment.experiment_id],
            f"tags.`{tagnames.LEVEL}` = '{tagnames.CANDIDATE_LEVEL}'",
            max_results=page_size,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def _cell(run: Any) -> tuple[Cell, str, str] | None:
    """(cell, device digest, device name) of a candidate run; None if it lacks either."""
    tags, metrics = run.data.tags, run.data.metrics
    device = tags.get(tagnames.DEVICE)
    p50 = metrics.get(P50)
    if not device or p50 is None or not math.isfinite(p50) or p50 <= 0:
        return None
    cell = Cell(
        target=tags.get(tagnames.TARGET, "unknown"),
        candidate=tags.get(tagnames.CANDIDATE, run.info.run_name or run.info.run_id),
        p50_ms=float(p50),
        p50_low=metrics.get(f"{P50}_low"),
        p50_high=metrics.get(f"{P50}_high"),
        verdict=tags.get(tagnames.VERDICT, "unknown"),
        speedup=metrics.get("speedup"),
        accuracy=metrics.get("accuracy"),
        when=datetime.fromtimestamp((run.info.start_time or 0) / 1000, tz=UTC),
        baseline=tags.get(tagnames.BASELINE, "false").lower() == "true",
        run_id=run.info.run_id,
        won=tags.get(tagnames.WINNER, "false").lower() == "true",
    )
    return cell, device, tags.get(tagnames.DEVICE_NAME) or "unknown device"
