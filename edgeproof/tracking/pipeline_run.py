"""The parent MLflow run of one pipeline run: opened with its lineage, closed with its report.

The run is opened under a key, so a retried start takes up the same run; a run whose first
logging fails is ended FAILED, never left RUNNING (one a killed process left is ended by
``tracking.abandoned``). Each target logs its own nested
runs (``run_log``); this module writes what belongs to the whole run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from edgeproof.config import RegistryConfig
from edgeproof.data.datagate import DataGateResult
from edgeproof.errors import EdgeproofError
from edgeproof.records import Lineage, TargetResult
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.datasets import data_inputs
from edgeproof.tracking.lineage import lineage_tags
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.names import check_names
from edgeproof.tracking.run_log import PLOTS_DIR


def new_run_name(model: str, git_sha: str | None) -> str:
    """``<model>-<UTC stamp>[-<short sha>]``: the MLflow run and report folder name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{model}-{stamp}" + (f"-{git_sha[:7]}" if git_sha else "")


def champions_now(
    store: MlflowStore, registry: RegistryConfig, model: str, targets: list[str]
) -> dict[str, str | None]:
    """Each target's champion version now: what its promotion will compare-and-set against.

    First, every registry name the run will need must be CI's (``names.check_names``): a
    name someone else holds is refused here, in one line, before any work."""
    check_names(store, registry, model, targets)
    return {
        target: store.alias_version(
            registry.registered_name(model, target), registry.champion_alias
        )
        for target in targets
    }


def start_pipeline_run(
    store: MlflowStore,
    experiment_id: str,
    run_name: str,
    *,
    lineage: Lineage,
    trigger: str,
    targets: list[str],
    champions: dict[str, str | None],
    warnings: tuple[str, ...],
    model_path: Path,
    params_file: Path,
    root: Path,
    data_files: Mapping[str, Path],
    key: str | None = None,
) -> str:
    """The parent run (lineage and champion tags, the params file, the data as MLflow
    datasets); its id."""
    tags = {
        **lineage_tags(lineage),
        tagnames.LEVEL: tagnames.PIPELINE_LEVEL,
        tagnames.TRIGGER: trigger,
        tagnames.TARGETS: ",".join(targets),
        **{f"{tagnames.CHAMPION_AT_START}{t}": v or "none" for t, v in champions.items()},
    }
    if warnings:
        tags[tagnames.WARNINGS] = "; ".join(warnings)[:5000]
    run_id = store.start_run(experiment_id, run_name, tags=tags, key=key)
    try:
        store.log(run_id, params={"model.path": str(model_path), "targets": ",".join(targets)})
        store.log_artifact(run_id, params_file)
        store.log_inputs(run_id, data_inputs(root, data_files))
    except EdgeproofError as exc:
        with contextlib.suppress(EdgeproofError):
            store.log(run_id, tags={tagnames.STATUS: "error", tagnames.ERROR: str(exc)})
        with contextlib.suppress(EdgeproofError):
            store.end(run_id, "FAILED")
        raise
    return run_id


def log_data_gate(
    store: MlflowStore, run_id: str, result: DataGateResult, reused: bool = False
) -> None:
    """The Great Expectations results and the gate's outcome, on the parent run; ``reused``:
    the verdict of an identical earlier validation (same data, checks and code)."""
    store.log_text(run_id, json.dumps(result.results, indent=1), "data_gate/gx_results.json")
    store.log(
        run_id,
        metrics={"data_gate.failed_expectations": len(result.failures)},
        tags={
            tagnames.DATA_GATE: "pass" if result.success else "fail",
            tagnames.DATA_GATE_REUSED: str(reused).lower(),
        },
    )
    if not result.success:
        store.log_text(run_id, "\n".join(result.failures) + "\n", "data_gate/failures.txt")


def download_plots(store: MlflowStore, results: list[TargetResult], dest: Path) -> list[Path]:
    """Each target run's plots (they were drawn where the target ran), into ``dest``."""
    files = []
    for result in results:
        if result.target_run is None:
            continue
        for name in result.outcome.plots:
            local = store.client.download_artifacts(
                result.target_run, f"{PLOTS_DIR}/{name}", str(dest)
            )
            files.append(Path(local))
    return files


def finish_pipeline_run(store: MlflowStore, run_id: str, folder: Path, status: str) -> None:
    """The report (summary, verdict, figures) on the parent run, which ends with ``status``."""
    store.log_artifact(run_id, folder / "summary.md")
    store.log_artifact(run_id, folder / "verdict.json")
    for png in sorted(folder.glob("*.png")):
        store.log_artifact(run_id, png)
    store.log(run_id, tags={tagnames.STATUS: status})
    store.end(run_id, "FAILED" if status == "error" else "FINISHED")
