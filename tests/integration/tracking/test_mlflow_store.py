"""MlflowStore against a real sqlite MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.config import TrackingConfig
from edgeproof.errors import TrackingError
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
