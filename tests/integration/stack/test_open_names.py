"""Squatting on a server where every user may create (MLflow's default, and the stack with
``EDGEPROOF_STACK_RESTRICT_CREATE=false``): a READ user takes edgeproof's names.

Here a reader can create a lock or a model name before CI. What must hold: CI's run ends in
bounded time with one line naming the name and what an admin does (never a request loop,
never a deleted foreign lock); names CI created first cannot be taken. One stack for the
module (its own PostgreSQL, MLflow and Prefect), stopped at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from edgeproof.errors import RegistryConflict, TrackingError
from edgeproof.tracking import tags as tagnames
from edgeproof.tracking.access import ForeignName
from edgeproof.tracking.champion import move_champion
from tests.helpers import REGISTRY, champion, moves, promote
from tests.integration.stack.catalogue import (
    TARGET,
    assert_bounded_one_line,
    claimed_model,
    client_as,
    edgeproof_as,
    tiny_project,
)
from tests.integration.stack.conftest import RunningStack, started_stack


@pytest.fixture(scope="module")
def open_stack() -> Iterator[RunningStack]:
    with started_stack({"EDGEPROOF_STACK_RESTRICT_CREATE": "false"}) as running:
        yield running


def _model(tmp_path: Path, prefix: str) -> str:
    return prefix + tmp_path.name[-8:].replace("_", "").lower()


def test_a_tagless_lock_made_by_a_reader_ends_ci_run_at_once_in_one_line(
    open_stack: RunningStack,
    tmp_path: Path,
    tiny_model: Path,
    tiny_data: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue: a reader's lock without tags made CI's run spin at 'promoting winners'
    (14,871 requests in 3 minutes). Now the run ends in one line before any work."""
    model = _model(tmp_path, "lockd")
    lock = f"{model}.{TARGET}.edgeproof-lock"
    project = tiny_project(tmp_path / "project", model, tiny_model, tiny_data)
    client_as(open_stack, "reviewer", monkeypatch).create_registered_model(lock)

    run = edgeproof_as(open_stack, project, "ci", "run", "--target", TARGET)
    assert_bounded_one_line(
        run, 2, f"registry lock '{lock}' is not edgeproof's (it has no owner/time tags)", "admin"
    )
    ci = open_stack.store("ci", monkeypatch)
    assert ci.registered_model(lock) is not None  # CI never deletes what is not its own
    assert ci.registered_model(f"{model}.{TARGET}") is None


def test_a_model_name_taken_by_a_reader_is_reported_before_any_work(
    open_stack: RunningStack,
    tmp_path: Path,
    tiny_model: Path,
    tiny_data: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue: a reader made ``squat-cnn.onnxruntime-cpu`` first; CI's runs ended with
    ``cannot register a version ...: 403``, every run, after all the work."""
    model = _model(tmp_path, "squat")
    name = f"{model}.{TARGET}"
    project = tiny_project(tmp_path / "project", model, tiny_model, tiny_data)
    client_as(open_stack, "reviewer", monkeypatch).create_registered_model(name)

    run = edgeproof_as(open_stack, project, "ci", "run", "--target", TARGET)
    assert_bounded_one_line(
        run,
        2,
        f"registered model '{name}' exists and 'ci' cannot manage it (READ)",
        "an MLflow admin deletes it, or grants 'ci' MANAGE on it",
    )
    init = edgeproof_as(open_stack, project, "ci", "registry", "init")
    assert_bounded_one_line(init, 2, f"registered model '{name}' exists")


def test_names_ci_made_first_cannot_be_taken_and_a_lock_is_never_spun_on(
    open_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claimed first (``registry init``), the model name stays CI's; the lock cannot be made
    in advance (its creation is the mutex), so a reader's lock is refused at once, with or
    without forged tags, and left for an admin."""
    claimed = claimed_model(open_stack, monkeypatch, "first")
    reader = client_as(open_stack, "reviewer", monkeypatch)
    with pytest.raises(MlflowException) as taken:
        reader.create_registered_model(claimed.name)
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as experiment:
        reader.create_experiment(claimed.model)
    assert experiment.value.error_code == "RESOURCE_ALREADY_EXISTS"

    patient = REGISTRY.model_copy(update={"lock_timeout_seconds": 120.0})
    for forged in (
        {},  # no tags
        {tagnames.LOCK_OWNER: "ci-run", tagnames.LOCK_SINCE: f"{time.time():.3f}"},  # "live"
        {tagnames.LOCK_OWNER: "ci-run", tagnames.LOCK_SINCE: "1000"},  # "stale": not broken
    ):
        client_as(open_stack, "reviewer", monkeypatch).create_registered_model(
            claimed.lock, tags=forged
        )
        ci = open_stack.store("ci", monkeypatch)
        started = time.monotonic()
        with pytest.raises(ForeignName, match=f"registry lock '{claimed.lock}' is not"):
            move_champion(
                ci, patient, claimed.name, to_version=claimed.spare, expected=claimed.champion,
                action="promote", run="ci", reason="x",
            )  # fmt: skip
        assert time.monotonic() - started < 15  # refused at once, not after 120 s
        assert ci.registered_model(claimed.lock) is not None  # never deleted by CI
        assert champion(ci, claimed.name) == claimed.champion
        admin = open_stack.store("admin", monkeypatch)
        admin.delete_model(claimed.lock)  # what the message says an admin does
    reviewer = open_stack.store("reviewer", monkeypatch)
    with pytest.raises(TrackingError, match=f"cannot set alias 'champion' of '{claimed.name}'"):
        promote(reviewer, claimed.name, claimed.spare, claimed.champion)  # may take the lock
    ci = open_stack.store("ci", monkeypatch)
    assert ci.registered_model(claimed.lock) is None  # the reader's lock was released
    history = moves(ci, claimed.name)
    promote(ci, claimed.name, claimed.spare, claimed.champion)
    assert moves(ci, claimed.name) == [*history, ("promote", claimed.champion, claimed.spare)]


def test_a_live_lock_of_another_ci_run_is_waited_for_then_refused(
    open_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI's own lock (another run, alive) is not foreign: waited for, politely, then a
    conflict at the deadline."""
    claimed = claimed_model(open_stack, monkeypatch, "busy")
    ci = open_stack.store("ci", monkeypatch)
    held = {tagnames.LOCK_OWNER: "other-run", tagnames.LOCK_SINCE: f"{time.time():.3f}"}
    assert ci.create_model_if_absent(claimed.lock, held, "another CI run")
    impatient = REGISTRY.model_copy(update={"lock_timeout_seconds": 3.0})
    started = time.monotonic()
    with pytest.raises(RegistryConflict, match="is held by other-run"):
        move_champion(
            ci, impatient, claimed.name, to_version=claimed.spare, expected=claimed.champion,
            action="promote", run="ci", reason="x",
        )  # fmt: skip
    assert 3.0 <= time.monotonic() - started < 20
    ci.delete_model(claimed.lock)
