"""Shared pieces of the stack's security tests: a tiny project, ``edgeproof run`` as CI on
the stack, the registry names of a model claimed by CI, and a reader's MLflow client."""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from edgeproof.tracking.alias_lock import lock_name
from edgeproof.tracking.mlflow_store import MlflowStore
from tests.e2e.reliability.project import Done, build_project, set_param
from tests.helpers import BIN, make_versions, promote
from tests.integration.stack.conftest import RunningStack

TARGET = "onnxruntime-cpu"
RUN_LIMIT_SECONDS = 240.0  # a tiny run on the stack, machine shared: minutes, never more
RUN_REQUEST_LIMIT = 400  # MLflow requests of one tiny run (the lock-loop bug made 14,871)


def tiny_project(folder: Path, model: str, tiny_model: Path, tiny_data: dict[str, Path]) -> Path:
    """The tiny project of the reliability tests as model ``model``, gates off (the tiny
    CNN is random), so its one target passes and promotes."""
    project = build_project(folder, tiny_model, tiny_data)
    set_param(project, "model.name", model)
    for key in ("accuracy.max_drop_abs", "fidelity.min_top1_agreement", "fidelity.max_kl"):
        set_param(project, f"gates.{key}", None)
    set_param(project, "gates.latency.min_speedup", None)
    return project


@dataclass(frozen=True)
class TimedRun:
    """A finished ``edgeproof`` command on the stack: its output, time and MLflow load."""

    done: Done
    seconds: float
    requests: int  # MLflow requests the server logged meanwhile

    def error_lines(self) -> list[str]:
        return self.done.error_lines()


def edgeproof_as(
    stack: RunningStack, project: Path, user: str, *args: str, timeout: float = 600
) -> TimedRun:
    """``edgeproof ARGS --params params.yaml`` in ``project`` as ``user`` (stack.env and
    credentials.env loaded, as docs/production.md runs it)."""
    before = stack.requests_logged()
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "edgeproof"), *args, "--params", "params.yaml"],
        cwd=project,
        env=stack.run_env(project, user),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.monotonic() - started
    return TimedRun(
        Done(done.returncode, done.stdout, done.stderr),
        seconds,
        stack.requests_logged() - before,
    )


def assert_bounded_one_line(run: TimedRun, exit_code: int, *needles: str) -> str:
    """Exit ``exit_code`` within the limit, one error line holding every needle, and a
    bounded number of MLflow requests (no request loop ran)."""
    assert run.done.returncode == exit_code, run.done.explain()
    assert run.seconds < RUN_LIMIT_SECONDS, (run.seconds, run.done.explain())
    assert run.requests < RUN_REQUEST_LIMIT, (run.requests, run.done.explain())
    lines = run.error_lines()
    assert len(lines) == 1, f"expected one error line, got {lines}\n{run.done.explain()}"
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in run.done.stdout + run.done.stderr, run.done.explain()
    return lines[0]


@dataclass(frozen=True)
class Claimed:
    """A model whose registry names CI made, with a champion and a spare version."""

    model: str
    name: str  # <model>.<target>
    lock: str
    champion: str
    spare: str
    run_id: str  # the run whose files the champion points at


def claimed_model(stack: RunningStack, monkeypatch: pytest.MonkeyPatch, prefix: str) -> Claimed:
    """Names claimed by CI (``claim_names``), two versions, the first promoted."""
    from edgeproof.tracking.names import claim_names
    from tests.helpers import REGISTRY

    model = f"{prefix}{uuid.uuid4().hex[:8]}"
    ci = stack.store("ci", monkeypatch)
    states = claim_names(ci, REGISTRY, model, [TARGET])
    assert [s.state for s in states] == ["created", "created", "absent"], states
    name = REGISTRY.registered_name(model, TARGET)
    first, spare = make_versions(ci, name, "pass", "pass")
    promote(ci, name, first, None)
    run_id = ci.version_run_id(name, version=first)
    return Claimed(model, name, lock_name(name), first, spare, run_id)


def ci_moves_champion(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch, claimed: Claimed
) -> MlflowStore:
    """CI moves champion to the other version and back: each move bounded in time and in
    requests (the lock loop cannot spin)."""
    from mlflow.utils import rest_utils

    ci = stack.store("ci", monkeypatch)
    made: list[str] = []
    real = rest_utils.http_request

    def counted(*args: object, **kwargs: object) -> object:
        made.append(str(kwargs.get("endpoint", "?")))
        return real(*args, **kwargs)

    monkeypatch.setattr(rest_utils, "http_request", counted)
    for to, expected in ((claimed.spare, claimed.champion), (claimed.champion, claimed.spare)):
        started = time.monotonic()
        promote(ci, claimed.name, to, expected)
        assert time.monotonic() - started < 60, "a CI promotion took over a minute"
    monkeypatch.setattr(rest_utils, "http_request", real)
    assert len(made) < 60, f"{len(made)} requests for two promotions: {made}"
    return ci


def client_as(stack: RunningStack, user: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """A plain MLflow client acting as ``user`` (what a person with those credentials has)."""
    stack.store(user, monkeypatch)
    return MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)
