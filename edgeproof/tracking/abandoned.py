"""Runs a killed process left RUNNING, ended FAILED by the next pipeline run that finds them.

Every run edgeproof opens carries its owner (``host:pid``, ``tags.OWNER``). A RUNNING run is
abandoned when its owner ran on this host and that process is gone, or, wherever it ran,
when it has been RUNNING for longer than any gate may take (``stale_after_s``: a run on
another host cannot be asked). A run of a process that is alive is never touched, so two
pipelines running at once leave each other alone.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable

from edgeproof.errors import TrackingError
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.mlflow_store import MlflowStore, run_owner

STALE_AFTER_S = 24 * 3600.0  # longer than a target's dispatch timeout times its targets


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def abandoned_reason(
    owner: str | None,
    age_s: float,
    *,
    host: str,
    alive: Callable[[int], bool],
    stale_after_s: float = STALE_AFTER_S,
) -> str | None:
    """Why a RUNNING run is abandoned, or None when it may still be working."""
    if owner and owner != run_owner():
        owner_host, _, pid = owner.rpartition(":")
        if owner_host == host and pid.isdigit() and not alive(int(pid)):
            return f"abandoned: its process {owner} ended without closing it"
    if age_s > stale_after_s:
        return f"abandoned: RUNNING for {age_s / 3600:.1f} h (limit {stale_after_s / 3600:.0f} h)"
    return None


def reap_abandoned_runs(
    store: MlflowStore, experiment_id: str, now_ms: int, stale_after_s: float = STALE_AFTER_S
) -> list[str]:
    """End the experiment's abandoned runs FAILED (reason in ``tags.ERROR``); their ids."""
    host = socket.gethostname()
    reaped = []
    for run in store.running_runs(experiment_id):
        age_s = (now_ms - run.info.start_time) / 1000
        why = abandoned_reason(
            run.data.tags.get(tagnames.OWNER),
            age_s,
            host=host,
            alive=process_alive,
            stale_after_s=stale_after_s,
        )
        if why is None:
            continue
        with contextlib.suppress(TrackingError):  # a run ended meanwhile: nothing to do
            store.log(run.info.run_id, tags={tagnames.STATUS: "error", tagnames.ERROR: why})
            store.end(run.info.run_id, "FAILED")
            reaped.append(run.info.run_id)
    return reaped
