"""A target's result read back from MLflow, for a target gated on another runner.

Every ``gate-target`` run logs its target run under the parent's MLflow run
(``target_outcome.json`` and one child run per candidate); MLflow is the one store every
runner must reach anyway, so the parent collects a dispatched target's verdict there
rather than from a Prefect result (which would need storage every device shares).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgeproof.errors import EdgeproofError
from edgeproof.records import TargetOutcome, TargetResult
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.mlflow_store import PARENT_TAG, MlflowStore
from edgeproof.tracking.run_log import TARGET_OUTCOME_FILE


def result_from_mlflow(
    store: MlflowStore, experiment_id: str, parent_run_id: str, target: str
) -> TargetResult:
    """The newest target run of ``target`` under the parent run, its outcome file and the
    candidate runs under it; raises EdgeproofError when any of them is missing."""
    query = (
        f"tags.`{PARENT_TAG}` = '{parent_run_id}' and "
        f"tags.`{tagnames.LEVEL}` = '{tagnames.TARGET_LEVEL}' and "
        f"tags.`{tagnames.TARGET}` = '{target}'"
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
        [experiment_id], f"tags.`{PARENT_TAG}` = '{target_run}'", max_results=1000
    )
    runs = {
        r.data.tags[tagnames.CANDIDATE]: r.info.run_id
        for r in children
        if tagnames.CANDIDATE in r.data.tags
    }
    missing = {o.candidate.name for o in outcome.outcomes} - set(runs)
    if missing:
        raise EdgeproofError(f"{target}: no MLflow run for candidate(s) {sorted(missing)}")
    return TargetResult(outcome=outcome, target_run=target_run, candidate_runs=runs)
