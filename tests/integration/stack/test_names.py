"""Who can do what to edgeproof's registry names on the stack, as ``deploy/stack.sh start``
makes it: a security catalogue, each entry run against the real server.

The stack lets only CI create experiments and registered models (MLflow's workspace mode:
other users inherit READ and cannot create); ``start`` creates, as CI, the names params.yaml
implies. Each entry is an action a READ user (``reviewer``) or an anonymous client takes
against a model whose names CI holds, with what must happen; after each, CI moves the
champion within its time limit and a bounded number of requests, and nothing the action
targeted changed. docs/production.md "Who can do what" is this table.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from edgeproof.tracking import tags as tagnames
from tests.helpers import champion, moves
from tests.integration.stack.catalogue import (
    TARGET,
    Claimed,
    assert_bounded_one_line,
    ci_moves_champion,
    claimed_model,
    client_as,
    edgeproof_as,
    tiny_project,
)
from tests.integration.stack.conftest import RunningStack

DENIED = "PERMISSION_DENIED"  # HTTP 403


@dataclass(frozen=True)
class Attempt:
    """One action of a READ user against CI's names, and the answer it must get."""

    action: str
    do: Callable[[MlflowClient, Claimed, Path], object]
    expect: str  # an MLflow error code, or "allowed"


def _source(client: MlflowClient, claimed: Claimed) -> str:
    return client.get_run(claimed.run_id).info.artifact_uri + "/model"


READER_ATTEMPTS = [
    Attempt(
        "create <model>.<target> (take CI's name)",
        lambda c, m, _: c.create_registered_model(m.name),
        DENIED,
    ),
    Attempt(
        "create a <model>.<target> CI has not made yet",
        lambda c, m, _: c.create_registered_model(f"{m.model}-new.{TARGET}"),
        DENIED,
    ),
    Attempt(
        "create the lock <model>.<target>.edgeproof-lock (no tags)",
        lambda c, m, _: c.create_registered_model(m.lock),
        DENIED,
    ),
    Attempt(
        "create the lock with forged owner/time tags",
        lambda c, m, _: c.create_registered_model(
            m.lock, tags={tagnames.LOCK_OWNER: "ci-run", tagnames.LOCK_SINCE: "1000"}
        ),
        DENIED,
    ),
    Attempt(
        "create the experiment of a model CI has not run yet",
        lambda c, m, _: c.create_experiment(f"{m.model}-new"),
        DENIED,
    ),
    Attempt(
        "move champion",
        lambda c, m, _: c.set_registered_model_alias(m.name, "champion", m.spare),
        DENIED,
    ),
    Attempt(
        "delete champion",
        lambda c, m, _: c.delete_registered_model_alias(m.name, "champion"),
        DENIED,
    ),
    Attempt(
        "set an edgeproof.audit.* tag (forge history)",
        lambda c, m, _: c.set_registered_model_tag(m.name, "edgeproof.audit.999999", "{}"),
        DENIED,
    ),
    Attempt(
        "delete an edgeproof.audit.* tag (erase history)",
        lambda c, m, _: c.delete_registered_model_tag(m.name, "edgeproof.audit.000001"),
        DENIED,
    ),
    Attempt(
        "tag a version edgeproof.gates=pass",
        lambda c, m, _: c.set_model_version_tag(m.name, m.spare, tagnames.GATES, "pass"),
        DENIED,
    ),
    Attempt(
        "register a version",
        lambda c, m, _: c.create_model_version(m.name, _source(c, m), run_id=m.run_id),
        DENIED,
    ),
    Attempt(
        "delete a version",
        lambda c, m, _: c.delete_model_version(m.name, m.spare),
        DENIED,
    ),
    Attempt(
        "delete <model>.<target>",
        lambda c, m, _: c.delete_registered_model(m.name),
        DENIED,
    ),
    Attempt(
        "rename <model>.<target>",
        lambda c, m, _: c.rename_registered_model(m.name, f"{m.name}-moved"),
        DENIED,
    ),
    Attempt(
        "overwrite the champion's model file",
        lambda c, m, tmp: c.log_artifact(m.run_id, str(_file(tmp)), "model"),
        DENIED,
    ),
    Attempt(
        "read the champion (alias, versions, model files)",
        lambda c, m, tmp: (
            c.get_model_version_by_alias(m.name, "champion"),
            c.download_artifacts(m.run_id, "model", str(tmp)),
        ),
        "allowed",
    ),
]


def _file(folder: Path) -> Path:
    path = folder / "model.txt"
    path.write_text("weights of the reader's choosing")
    return path


@pytest.fixture(scope="module")
def claimed(stack: RunningStack) -> Claimed:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return claimed_model(stack, monkeypatch, "sec")


@pytest.mark.parametrize("attempt", READER_ATTEMPTS, ids=lambda a: a.action)
def test_what_a_reader_can_do_to_ci_names(
    stack: RunningStack,
    claimed: Claimed,
    attempt: Attempt,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ci = stack.store("ci", monkeypatch)
    before = (champion(ci, claimed.name), moves(ci, claimed.name), _versions(ci.client, claimed))
    reader = client_as(stack, "reviewer", monkeypatch)
    if attempt.expect == "allowed":
        attempt.do(reader, claimed, tmp_path)
    else:
        with pytest.raises((MlflowException, requests.HTTPError)) as refused:
            attempt.do(reader, claimed, tmp_path)
        assert _answer(refused.value) == attempt.expect, refused.value
    ci = stack.store("ci", monkeypatch)
    after = (champion(ci, claimed.name), moves(ci, claimed.name), _versions(ci.client, claimed))
    assert after == before  # the reader changed nothing
    assert ci.registered_model(claimed.lock) is None
    assert ci.registered_model(f"{claimed.model}-new.{TARGET}") is None
    ci_moves_champion(stack, monkeypatch, claimed)  # CI is not held up


def _answer(error: BaseException) -> str:
    """MLflow's error code; a 403 of the artifact proxy (a plain HTTP error) is DENIED."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return DENIED if error.response.status_code == 403 else str(error.response.status_code)
    return str(getattr(error, "error_code", type(error).__name__))


def _versions(client: MlflowClient, claimed: Claimed) -> list[tuple[str, str, dict]]:
    found = client.search_model_versions(f"name = '{claimed.name}'")
    artifacts = sorted(a.path for a in client.list_artifacts(claimed.run_id, "model"))
    return [*sorted((v.version, v.source, dict(v.tags)) for v in found), ("files", *artifacts)]


def _anonymous(stack: RunningStack, method: str, path: str, body: dict | None) -> int:
    """The HTTP status a client without credentials gets."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        stack.mlflow_uri + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_an_anonymous_client_gets_401_for_every_action(
    stack: RunningStack, claimed: Claimed
) -> None:
    models = "/api/2.0/mlflow/registered-models"
    name = claimed.name
    attempts = {
        "read champion": ("GET", f"{models}/alias?name={name}&alias=champion", None),
        "create the lock": ("POST", f"{models}/create", {"name": claimed.lock}),
        "create a model": ("POST", f"{models}/create", {"name": f"anon.{TARGET}"}),
        "move champion": (
            "POST",
            f"{models}/alias",
            {"name": name, "alias": "champion", "version": claimed.spare},
        ),
        "delete champion": ("DELETE", f"{models}/alias", {"name": name, "alias": "champion"}),
        "set an audit tag": (
            "POST",
            f"{models}/set-tag",
            {"name": name, "key": "edgeproof.audit.999999", "value": "{}"},
        ),
        "tag a version": (
            "POST",
            "/api/2.0/mlflow/model-versions/set-tag",
            {"name": name, "version": claimed.spare, "key": tagnames.GATES, "value": "pass"},
        ),
        "register a version": (
            "POST",
            "/api/2.0/mlflow/model-versions/create",
            {"name": name, "source": "mlflow-artifacts:/x", "run_id": claimed.run_id},
        ),
        "delete a version": (
            "DELETE",
            "/api/2.0/mlflow/model-versions/delete",
            {"name": name, "version": claimed.spare},
        ),
        "rename the model": ("POST", f"{models}/rename", {"name": name, "new_name": "x.y"}),
        "delete the model": ("DELETE", f"{models}/delete", {"name": name}),
        "create an experiment": ("POST", "/api/2.0/mlflow/experiments/create", {"name": "anon"}),
        "read the model files": (
            "GET",
            f"/get-artifact?path=model/model.txt&run_uuid={claimed.run_id}",
            None,
        ),
    }
    statuses = {what: _anonymous(stack, *call) for what, call in attempts.items()}
    assert statuses == dict.fromkeys(attempts, 401)
    wrong = base64.b64encode(b"reviewer:not-the-password").decode()
    request = urllib.request.Request(
        f"{stack.mlflow_uri}{models}/get?name={name}", headers={"Authorization": f"Basic {wrong}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401


def test_the_first_run_of_a_model_never_seen_promotes_it(
    stack: RunningStack, tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path]
) -> None:
    """The issue's first run: no registered model yet (the auth app answers an alias read of
    it with 403); the run reads "no champion", gates, registers v1 and makes it champion."""
    model = "first-" + tmp_path.name[-8:].replace("_", "").lower()
    project = tiny_project(tmp_path / "project", model, tiny_model, tiny_data)
    done = edgeproof_as(stack, project, "ci", "run", "--target", TARGET)
    assert done.done.returncode == 0, done.done.explain()
    assert done.error_lines() == []
    assert done.requests < 400, done.requests
    with pytest.MonkeyPatch.context() as monkeypatch:
        reviewer = stack.store("reviewer", monkeypatch)
        assert champion(reviewer, f"{model}.{TARGET}") == "1"
        assert moves(reviewer, f"{model}.{TARGET}") == [("promote", None, "1")]


def test_registry_init_makes_every_name_ci_before_a_reader_can(
    stack: RunningStack,
    tmp_path: Path,
    tiny_model: Path,
    tiny_data: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = "init-" + tmp_path.name[-8:].replace("_", "").lower()
    project = tiny_project(tmp_path / "project", model, tiny_model, tiny_data)
    first = edgeproof_as(stack, project, "ci", "registry", "init")
    assert first.done.returncode == 0, first.done.explain()
    assert first.done.stdout.splitlines() == [
        f"experiment '{model}': created (created as 'ci' (MANAGE))",
        f"{model}.{TARGET}: created (created as 'ci' (MANAGE))",
        f"{model}.{TARGET}.edgeproof-lock: absent (exists only while a run moves the aliases)",
    ]
    reader = client_as(stack, "reviewer", monkeypatch)
    with pytest.raises(MlflowException) as refused:
        reader.create_registered_model(f"{model}.{TARGET}")
    assert refused.value.error_code == DENIED
    again = edgeproof_as(stack, project, "ci", "registry", "init")
    assert again.done.returncode == 0, again.done.explain()
    assert f"{model}.{TARGET}: ours ('ci' manages it)" in again.done.stdout
    as_reader = edgeproof_as(stack, project, "reviewer", "registry", "init")
    assert_bounded_one_line(
        as_reader, 2, f"experiment '{model}' exists and 'reviewer' cannot write runs to it"
    )
