"""The stack stopped and started again: data, aliases and users survive, grants are made.

Runs after the other stack tests (file order): it restarts the session's stack.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers import champion, make_versions, promote
from tests.integration.stack.conftest import RunningStack


@pytest.mark.slow  # a stop and a start of the whole stack (one to two minutes)
def test_a_restart_keeps_models_and_aliases_and_grants_the_ci_user(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.server import get_app_client

    name = f"restart{uuid.uuid4().hex[:8]}.onnxruntime-cpu"
    ci = stack.store("ci", monkeypatch)
    (v1,) = make_versions(ci, name, "pass")
    promote(ci, name, v1, None)
    experiment = ci.experiment("registry-tests")

    assert stack.stack_sh("stop").returncode == 0
    down = stack.stack_sh("status")
    assert down.returncode == 3 and json.loads(down.stdout)["mlflow"]["pid"] is None
    started = stack.stack_sh("start")
    assert started.returncode == 0, f"{started.stderr}\n{stack.logs()}"
    assert json.loads(stack.stack_sh("status").stdout)["postgres"]["pid"]

    assert champion(stack.store("reviewer", monkeypatch), name) == v1
    stack.store("admin", monkeypatch)
    auth = get_app_client("basic-auth", tracking_uri=stack.mlflow_uri)
    assert auth.get_user_permission("ci", "registered_model", name).permission == "MANAGE"
    assert auth.get_user_permission("reviewer", "registered_model", name).permission == "READ"
    assert auth.get_user_permission("ci", "experiment", experiment).permission == "MANAGE"
    ci = stack.store("ci", monkeypatch)
    (v2,) = make_versions(ci, name, "pass")
    promote(ci, name, v2, v1)
    assert champion(ci, name) == v2
