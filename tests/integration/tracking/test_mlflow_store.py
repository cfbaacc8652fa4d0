"""MlflowStore against a real sqlite MLflow store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeproof.config import TrackingConfig
from edgeproof.errors import TrackingError
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.abandoned import abandoned_reason, reap_abandoned_runs
from edgeproof.tracking.mlflow_store import PARENT_TAG, MlflowStore


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowStore:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return MlflowStore(
        TrackingConfig(
            uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=tmp_path / "art"
        )
    )


def test_runs_artifacts_versions_and_aliases(store: MlflowStore, tmp_path: Path) -> None:
    exp = store.experiment("m")
    assert store.experiment("m") == exp
    parent = store.start_run(exp, "p", tags={"git.sha": "abc"})
    child = store.start_run(exp, "c", parent_id=parent)
    store.log(child, params={"recipe.method": "static"}, metrics={"speedup": 3.0, "none": None})
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\0" * 128)
    store.log_artifact(child, model, "model")
    store.end(child)

    run = store.client.get_run(child)
    assert run.data.tags[PARENT_TAG] == parent
    assert run.data.params == {"recipe.method": "static"}
    assert run.data.metrics == {"speedup": 3.0}
    assert run.info.status == "FINISHED"
    assert (tmp_path / "art").is_dir()  # the configured artifact root is used

    assert store.alias_version("m.t", "champion") is None  # no model yet
    version = store.register("m.t", child, "model", {"edgeproof.run": "r1"})
    assert store.alias_version("m.t", "champion") is None  # model, no alias
    store.set_alias("m.t", "champion", version)
    assert store.alias_version("m.t", "champion") == version == "1"
    assert store.register("m.t", child, "model", {}) == "2"
    mv = store.client.get_model_version("m.t", "1")
    assert mv.run_id == child and mv.tags["edgeproof.run"] == "r1"
    assert mv.source.endswith("/model")


def test_unreachable_server_is_a_one_line_tracking_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    store = MlflowStore(TrackingConfig())
    assert store.uri == "http://127.0.0.1:9"
    with pytest.raises(TrackingError) as info:
        store.experiment("m")
    assert str(info.value).startswith("MLflow: cannot get or create experiment 'm'")
    assert "\n" not in str(info.value)


def test_a_retried_start_takes_up_the_run_its_first_attempt_opened(store: MlflowStore) -> None:
    exp = store.experiment("m")
    first = store.start_run(exp, "target", key="parent-1/onnxruntime-cpu")
    store.end(first, "FAILED")  # the attempt failed after opening its run
    again = store.start_run(exp, "target", key="parent-1/onnxruntime-cpu")
    other = store.start_run(exp, "target", key="parent-1/openvino-cpu")
    assert again == first != other
    assert store.client.get_run(first).info.status == "RUNNING"  # open again for the retry
    assert len(store.client.search_runs([exp])) == 2
    assert store.start_run(exp, "no key") != store.start_run(exp, "no key")


def test_runs_a_dead_process_left_running_are_ended_failed(store: MlflowStore) -> None:
    exp = store.experiment("m")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    left = store.start_run(exp, "killed", tags={tagnames.OWNER: f"{host}:{dead.stdout.strip()}"})
    old = store.start_run(exp, "elsewhere", tags={tagnames.OWNER: "another-host:1"})
    mine = store.start_run(exp, "this process")  # alive: never touched
    alive = store.start_run(exp, "parent", tags={tagnames.OWNER: f"{host}:{os.getppid()}"})
    now_ms = int(time.time() * 1000)
    assert reap_abandoned_runs(store, exp, now_ms) == [left]
    run = store.client.get_run(left)
    assert run.info.status == "FAILED"
    assert run.data.tags[tagnames.ERROR].startswith("abandoned: its process")
    for run_id in (old, mine, alive):
        assert store.client.get_run(run_id).info.status == "RUNNING"
    # another host's run (any run) is judged by its age: RUNNING longer than a gate takes
    assert set(reap_abandoned_runs(store, exp, now_ms + 25 * 3600 * 1000)) == {old, mine, alive}


def test_abandoned_reason_reads_the_owner_and_age() -> None:
    def gone(pid: int) -> bool:
        return False

    assert abandoned_reason("h:42", 10, host="h", alive=gone) is not None
    assert abandoned_reason("h:42", 10, host="h", alive=lambda _pid: True) is None
    assert abandoned_reason("x:42", 10, host="h", alive=gone) is None
    assert "RUNNING for 25.0 h" in (abandoned_reason(None, 25 * 3600, host="h", alive=gone) or "")
