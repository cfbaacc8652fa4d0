"""``promote`` of a target where no optimized candidate passed, on a real sqlite MLflow store:
the baseline registered as a fallback (tag, audit), a fallback the champion rules keep
out, a fallback whose champion moved meanwhile, and no fallback when it is off or the
baseline failed. The whole run, with the runtime and Prefect:
``tests/e2e/test_fallback_to_baseline.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.config import RegistryConfig, TrackingConfig
from edgeproof.gates.champion_policy import SourceKey
from edgeproof.gates.outcome import FALLBACK_REASON
from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    ChampionComparison,
    Lineage,
    RunInfo,
    TargetOutcome,
    Verdict,
)
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.audit import read_history
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.promote import promote
from tests.helpers import champion, make_summary, promoted_in_turn

NAME = "tiny.onnxruntime-cpu"
SOURCE = SourceKey("m" * 32, "d" * 32, "mp", "dp", "gp")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowStore:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return MlflowStore(
        TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=tmp_path)
    )


def _row(name: str, verdict: str, baseline: bool) -> CandidateOutcome:
    candidate = Candidate(
        target="onnxruntime-cpu",
        name=name,
        files=(Path("model.onnx"),),
        recipe={"method": "none" if baseline else "dynamic"},
        precision="fp32" if baseline else "int8",
        is_baseline=baseline,
    )
    reasons = () if verdict == "pass" else (f"{name}: speedup below 100x",)
    return CandidateOutcome(
        candidate=candidate,
        summary=make_summary(name, baseline=baseline),
        verdict=Verdict(candidate=name, status=verdict, checks=(), reasons=reasons),
    )


def _nothing_passed(
    store: MlflowStore, baseline_verdict: str = "pass"
) -> tuple[TargetOutcome, dict[str, str]]:
    """A blocked target (``dyn`` failed), its candidates logged as the track task logs them."""
    experiment = store.experiment("tiny")
    runs = {}
    for name in ("fp32", "dyn"):
        runs[name] = store.start_run(experiment, f"onnxruntime-cpu/{name}")
        store.log_text(runs[name], f"{name} weights", "model/model.onnx")
        store.end(runs[name])
    outcome = TargetOutcome(
        target="onnxruntime-cpu",
        available=True,
        reason="no candidate passed every gate",
        baseline="fp32",
        outcomes=(_row("fp32", baseline_verdict, True), _row("dyn", "fail", False)),
        status="blocked",
    )
    return outcome, runs


def _run(name: str) -> RunInfo:
    lineage = Lineage(
        git_sha=None, git_branch=None, git_dirty=None, params_sha256="0" * 64, dvc_md5={}
    )
    return RunInfo(
        run_name=name,
        model="tiny",
        mlflow_run_id=None,
        mlflow_experiment_id=None,
        tracking_uri="sqlite",
        started_at="2026-01-01T00:00:00+00:00",
        trigger="test",
        lineage=lineage,
    )


def test_the_baseline_is_registered_and_promoted_with_the_fallback_reason(
    store: MlflowStore,
) -> None:
    outcome, runs = _nothing_passed(store)
    got = promote(store, RegistryConfig(), _run("r1"), outcome, runs, None, SOURCE)
    assert got.moved and got.version == "1" and champion(store, NAME) == "1"
    assert got.reason.startswith(f"{FALLBACK_REASON} (no candidate passed every gate)")
    assert store.version_run_id(NAME, version="1") == runs["fp32"]  # the baseline's own files
    tags = store.version_tags(NAME, "1") or {}
    assert tags[tagnames.FALLBACK] == FALLBACK_REASON
    assert (tags[tagnames.CANDIDATE], tags[tagnames.GATES]) == ("fp32", "pass")
    assert tags[f"{tagnames.SOURCE_PREFIX}model_md5"] == SOURCE.model_md5
    (event,) = read_history(store, NAME)
    assert (event.action, event.from_version, event.to_version) == ("promote", None, "1")
    assert event.reason.startswith(FALLBACK_REASON)


def test_a_fallback_the_champion_rules_keep_out_registers_nothing(store: MlflowStore) -> None:
    outcome, runs = _nothing_passed(store)
    promote(store, RegistryConfig(), _run("r1"), outcome, runs, None, SOURCE)
    outcome, runs = _nothing_passed(store)
    kept = ChampionComparison(
        registered_model=NAME,
        champion_version="1",
        status="kept",
        reason="same source as champion v1; fp32 is not clearly better",
    )
    got = promote(
        store,
        RegistryConfig(),
        _run("r2"),
        outcome.model_copy(update={"champion": kept}),
        runs,
        "1",
        SOURCE,
    )
    assert not got.moved and got.version is None and champion(store, NAME) == "1"
    assert got.reason.startswith(FALLBACK_REASON) and "nothing registered" in got.reason
    assert [str(v.version) for v in store.client.search_model_versions(f"name = '{NAME}'")] == ["1"]
    last = read_history(store, NAME)[-1]
    assert (last.action, last.from_version, last.to_version) == ("kept", "1", "1")
    assert last.reason.startswith(FALLBACK_REASON)


def test_a_fallback_whose_champion_moved_meanwhile_is_refused_and_recorded(
    store: MlflowStore,
) -> None:
    (v1,) = promoted_in_turn(store, NAME, "pass")
    outcome, runs = _nothing_passed(store)
    got = promote(store, RegistryConfig(), _run("late"), outcome, runs, None, SOURCE)
    assert got.refused and not got.moved and got.version == str(int(v1) + 1)
    assert got.reason.startswith(FALLBACK_REASON) and "champion moved" in got.reason
    assert champion(store, NAME) == v1
    last = read_history(store, NAME)[-1]
    assert last.action == "refused" and last.reason.startswith(FALLBACK_REASON)


def test_no_fallback_when_it_is_off_or_the_baseline_failed(store: MlflowStore) -> None:
    outcome, runs = _nothing_passed(store)
    off = RegistryConfig(fallback_to_baseline=False)
    got = promote(store, off, _run("r1"), outcome, runs, None, SOURCE)
    assert (got.moved, got.version) == (False, None)
    assert got.reason == "no candidate passed every gate; champion is not set"
    outcome, runs = _nothing_passed(store, baseline_verdict="fail")
    got = promote(store, RegistryConfig(), _run("r2"), outcome, runs, None, SOURCE)
    assert (got.moved, got.version) == (False, None)
    assert "no fallback: the baseline fp32 did not pass (fp32: speedup below 100x)" in got.reason
    assert store.registered_model(NAME) is None and read_history(store, NAME) == []
