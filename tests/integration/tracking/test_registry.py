"""Champion moves against a real ``mlflow server``: compare-and-set, audit, rollback, races.

One server process (sqlite backend, local artifacts) serves the module; every test works on
its own registered model. Racing promoters are separate processes, as two CI jobs would be.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from edgeproof.config import TrackingConfig
from edgeproof.errors import RegistryConflict, RegistryRefused
from edgeproof.gates.champion_policy import SourceKey
from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    ChampionComparison,
    Lineage,
    RunInfo,
    TargetOutcome,
    Verdict,
)
from edgeproof.tracking.alias_lock import lock_name
from edgeproof.tracking.audit import read_history
from edgeproof.tracking.champion import move_champion, rollback
from edgeproof.tracking.champion_model import source_from_tags
from edgeproof.tracking.mlflow_store import MlflowStore
from edgeproof.tracking.promote import promote as register_and_promote
from tests.helpers import (
    BIN,
    RACE_LOST,
    RACER,
    REGISTRY,
    ROOT,
    champion,
    make_versions,
    moves,
    promote,
    promoted_in_turn,
    registry_params,
    tool_env,
)
from tests.mlflow_server import MlflowServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield srv
    srv.stop()


@pytest.fixture
def store(server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> MlflowStore:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    return MlflowStore(TrackingConfig())


@pytest.fixture
def name() -> str:
    return f"m{uuid.uuid4().hex[:8]}.onnxruntime-cpu"


def test_promotions_move_the_champion_and_are_recorded(store: MlflowStore, name: str) -> None:
    v1, v2 = make_versions(store, name, "pass", "pass")
    promote(store, name, v1, expected=None)
    promote(store, name, v2, expected=v1)
    assert champion(store, name) == v2
    assert moves(store, name) == [("promote", None, v1), ("promote", v1, v2)]
    events = read_history(store, name)
    assert [e.seq for e in events] == [1, 2]
    assert events[1].run == f"run-{v2}" and events[1].actor and events[1].time.endswith("+00:00")
    assert store.registered_model_tags(lock_name(name)) == {}  # the lock was released


def test_a_champion_that_moved_since_the_run_started_is_not_overwritten(
    store: MlflowStore, name: str
) -> None:
    v1, v2 = make_versions(store, name, "pass", "pass")
    promote(store, name, v1, expected=None)
    with pytest.raises(RegistryConflict, match=r"champion moved from unset to version 1"):
        promote(store, name, v2, expected=None)  # this run started before v1 was promoted
    assert champion(store, name) == v1
    assert moves(store, name) == [("promote", None, v1), ("refused", v1, v2)]
    assert "refused" in read_history(store, name)[-1].reason


def test_rollback_goes_to_the_previous_champion_not_back_and_forth(
    store: MlflowStore, name: str
) -> None:
    v1, v2, v3 = promoted_in_turn(store, name, "pass", "pass", "pass")
    event = rollback(store, REGISTRY, name, reason="p99 regression on device")
    assert (event.action, event.from_version, event.to_version) == ("rollback", v3, v2)
    rollback(store, REGISTRY, name, reason="v2 also bad")
    assert champion(store, name) == v1  # the champion before v2, not v3 again
    assert read_history(store, name)[-1].reason == "v2 also bad"


def test_rollback_refuses_unknown_ungated_and_unexplained_versions(
    store: MlflowStore, name: str
) -> None:
    _, v2, failed = promoted_in_turn(store, name, "pass", "pass", "fail")
    before = moves(store, name)
    with pytest.raises(RegistryRefused, match="has no version 99"):
        rollback(store, REGISTRY, name, reason="typo", to_version="99")
    with pytest.raises(RegistryRefused, match=rf"version {failed} never passed its gates"):
        rollback(store, REGISTRY, name, reason="try it", to_version=failed)
    with pytest.raises(RegistryRefused, match="needs a reason"):
        rollback(store, REGISTRY, name, reason=" ")
    with pytest.raises(RegistryRefused, match="is the champion already"):
        rollback(store, REGISTRY, name, reason="noop", to_version=v2)
    assert champion(store, name) == v2 and moves(store, name) == before  # nothing changed
    forced = rollback(store, REGISTRY, name, reason="hotfix", to_version=failed, force=True)
    assert champion(store, name) == failed and "forced" in forced.reason


def test_rollback_without_a_champion_or_a_previous_one(store: MlflowStore, name: str) -> None:
    (v1,) = make_versions(store, name, "pass")
    with pytest.raises(RegistryRefused, match="no 'champion' alias"):
        rollback(store, REGISTRY, name, reason="nothing to roll back")
    promote(store, name, v1, None)
    with pytest.raises(RegistryRefused, match="no champion before version 1"):
        rollback(store, REGISTRY, name, reason="first champion")


def test_a_move_made_outside_edgeproof_is_recorded(store: MlflowStore, name: str) -> None:
    v1, v2, v3 = make_versions(store, name, "pass", "pass", "pass")
    promote(store, name, v1, None)
    store.set_alias(name, "champion", v2)  # someone in the MLflow UI
    promote(store, name, v3, expected=v2)
    assert moves(store, name) == [
        ("promote", None, v1),
        ("unrecorded", v1, v2),
        ("promote", v2, v3),
    ]


def test_a_live_lock_makes_the_move_wait_then_refuse(store: MlflowStore, name: str) -> None:
    v1, v2 = make_versions(store, name, "pass", "pass")
    held = {"edgeproof.lock.owner": "run-other", "edgeproof.lock.since": f"{time.time():.3f}"}
    assert store.create_model_if_absent(lock_name(name), held, "held by a test")
    impatient = REGISTRY.model_copy(update={"lock_timeout_seconds": 0.5})
    started = time.monotonic()
    with pytest.raises(RegistryConflict, match="is held by run-other"):
        move_champion(
            store, impatient, name, to_version=v1, expected=None, action="promote", run="r",
            reason="x",
        )  # fmt: skip
    assert time.monotonic() - started >= 0.5
    assert champion(store, name) is None and moves(store, name) == []
    store.delete_model(lock_name(name))
    promote(store, name, v2, None)
    assert champion(store, name) == v2


def test_a_stale_lock_of_a_dead_run_is_broken_and_noted(store: MlflowStore, name: str) -> None:
    (v1,) = make_versions(store, name, "pass")
    dead = {"edgeproof.lock.owner": "run-crashed", "edgeproof.lock.since": "1000.0"}
    assert store.create_model_if_absent(lock_name(name), dead, "left by a crashed run")
    promote(store, name, v1, None)
    assert champion(store, name) == v1
    assert "broke a stale registry lock held by run-crashed" in read_history(store, name)[0].reason
    assert store.registered_model_tags(lock_name(name)) == {}


@pytest.mark.parametrize("answer", ["collided with a release", "answer lost, retried"])
def test_the_lock_survives_the_servers_two_racy_answers(
    store: MlflowStore, name: str, answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's answers in two windows of a race, replayed once each on a real server.

    "collided with a release": the insert collided, then the holder deleted the lock before
    MLflow's SQL store read it back to word its error: RESOURCE_DOES_NOT_EXIST (it crashed a
    CI racer). "answer lost, retried": the create landed but its answer did not, and the
    client's retry was told RESOURCE_ALREADY_EXISTS: the lock is ours, not someone else's.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST

    v1, v2 = make_versions(store, name, "pass", "pass")
    promote(store, name, v1, expected=None)
    real_create = store.client.create_registered_model
    replayed: list[str] = []

    def create(model: str, *args: object, **kwargs: object) -> object:
        if model == lock_name(name) and not replayed:
            replayed.append(model)
            if answer == "collided with a release":
                raise MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST)
            real_create(model, *args, **kwargs)
            raise MlflowException("exists", error_code=RESOURCE_ALREADY_EXISTS)
        return real_create(model, *args, **kwargs)

    monkeypatch.setattr(store.client, "create_registered_model", create)
    impatient = REGISTRY.model_copy(update={"lock_timeout_seconds": 2.0})
    start = time.monotonic()
    move_champion(
        store, impatient, name, to_version=v2, expected=v1, action="promote", run="r", reason="x"
    )
    assert replayed and time.monotonic() - start < 2.0  # no wait on a lock that was ours
    assert moves(store, name) == [("promote", None, v1), ("promote", v1, v2)]
    assert store.registered_model_tags(lock_name(name)) == {}


def test_two_racing_promotions_exactly_one_wins_and_the_other_is_recorded(
    server: MlflowServer, store: MlflowStore, name: str, tmp_path: Path
) -> None:
    v1, v2, v3 = make_versions(store, name, "pass", "pass", "pass")
    promote(store, name, v1, None)
    env = {**tool_env(tmp_path), "MLFLOW_TRACKING_URI": server.uri, "PYTHONPATH": str(ROOT)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, name, version, v1, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for version in (v2, v3)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{v}").exists() for v in (v2, v3)):
        assert time.monotonic() < deadline, "racers did not start"
        assert all(r.poll() is None for r in racers), [r.communicate()[0] for r in racers]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    codes = [r.wait(timeout=120) for r in racers]
    outputs = [r.communicate()[0] for r in racers]
    assert sorted(codes) == [0, RACE_LOST], outputs
    winner = (v2, v3)[codes.index(0)]
    loser = (v2, v3)[codes.index(RACE_LOST)]
    assert champion(store, name) == winner
    assert moves(store, name) == [
        ("promote", None, v1),
        ("promote", v1, winner),
        ("refused", winner, loser),
    ]
    assert f"moved from version {v1} to version {winner}" in outputs[codes.index(RACE_LOST)]


def test_cli_history_and_rollback(server: MlflowServer, store: MlflowStore, tmp_path: Path) -> None:
    name = "cli.onnxruntime-cpu"
    v1, v2 = promoted_in_turn(store, name, "pass", "pass")
    env = {**tool_env(tmp_path), "MLFLOW_TRACKING_URI": server.uri}
    params = str(registry_params(tmp_path))

    def edgeproof(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / "edgeproof"), *args, "--params", params]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    bad = edgeproof("rollback", "--target", "onnxruntime-cpu", "--to", "7", "--reason", "x")
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"edgeproof: error: {name} has no version 7"
    done = edgeproof("rollback", "--target", "onnxruntime-cpu", "--reason", "latency regression")
    assert done.returncode == 0, done.stderr
    assert f"champion {v2} -> {v1}" in done.stdout
    shown = edgeproof("history", "--target", "onnxruntime-cpu", "--json")
    assert shown.returncode == 0, shown.stderr
    events = [yaml.safe_load(line) for line in shown.stdout.splitlines()]
    assert [(e["action"], e["to_version"]) for e in events] == [
        ("promote", v1),
        ("promote", v2),
        ("rollback", v1),
    ]
    assert events[-1]["reason"] == "latency regression"
    table = edgeproof("history", "--target", "onnxruntime-cpu")
    assert "latency regression" in table.stdout and "rollback" in table.stdout


def test_the_prefect_rollback_flow(
    server: MlflowServer, store: MlflowStore, tmp_path: Path
) -> None:
    """The `rollback` flow (as a deployment would run it) makes the same audited move."""
    name = "flow.onnxruntime-cpu"
    v1, v2 = promoted_in_turn(store, name, "pass", "pass")
    params = registry_params(tmp_path)
    params.write_text(params.read_text().replace("name: cli", "name: flow"))
    code = (
        "import json, sys; from flows.rollback import rollback; "
        "print(json.dumps(rollback(target='onnxruntime-cpu', reason='from prefect', "
        "params_file=sys.argv[1])))"
    )
    env = {**tool_env(tmp_path), "MLFLOW_TRACKING_URI": server.uri, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(params)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    event = yaml.safe_load(done.stdout.strip().splitlines()[-1])
    assert (event["action"], event["from_version"], event["to_version"]) == ("rollback", v2, v1)
    assert event["run"].startswith("prefect:")
    assert champion(store, name) == v1


def winner_run(store: MlflowStore, name: str, run_name: str) -> tuple[TargetOutcome, RunInfo, str]:
    """A passing winner ``int8`` logged in a run, as the quality-gate flow hands it over."""
    model, target = name.split(".", 1)
    experiment = store.experiment("registry-tests")
    run_id = store.start_run(experiment, "winner")
    store.log_text(run_id, "int8 weights", "model/model.onnx")
    candidate = Candidate(
        target=target, name="int8", files=(Path("model.onnx"),), recipe={}, precision="int8"
    )
    verdict = Verdict(candidate="int8", status="pass", checks=(), reasons=())
    outcome = TargetOutcome(
        target=target,
        available=True,
        reason="fastest",
        outcomes=(CandidateOutcome(candidate=candidate, summary=None, verdict=verdict),),
        winner="int8",
        status="pass",
    )
    lineage = Lineage(
        git_sha=None, git_branch=None, git_dirty=None, params_sha256="0" * 64, dvc_md5={}
    )
    run = RunInfo(
        run_name=run_name,
        model=model,
        mlflow_run_id=None,
        mlflow_experiment_id=None,
        tracking_uri=store.uri,
        started_at="2026-01-01T00:00:00+00:00",
        trigger="test",
        lineage=lineage,
    )
    return outcome, run, run_id


def test_a_version_records_its_source_and_a_kept_champion_is_recorded_not_moved(
    store: MlflowStore, name: str
) -> None:
    source = SourceKey("m" * 32, "d" * 32, "mp", "dp", "gp")
    outcome, run, run_id = winner_run(store, name, "first-run")
    first = register_and_promote(store, REGISTRY, run, outcome, {"int8": run_id}, None, source)
    assert first.moved and champion(store, name) == first.version
    assert source_from_tags(store.version_tags(name, first.version) or {}) == source
    outcome, run, run_id = winner_run(store, name, "unchanged-run")
    kept = ChampionComparison(
        registered_model=name,
        champion_version=first.version,
        status="kept",
        reason="same source as champion v1; int8 is not clearly better",
    )
    outcome = outcome.model_copy(update={"champion": kept})
    got = register_and_promote(
        store, REGISTRY, run, outcome, {"int8": run_id}, first.version, source
    )
    assert not got.moved and not got.refused and got.version is None
    assert got.reason.endswith("nothing registered, champion stays at version 1")
    assert champion(store, name) == first.version
    assert [v.version for v in store.client.search_model_versions(f"name = '{name}'")] == ["1"]
    last = read_history(store, name)[-1]
    assert (last.action, last.from_version, last.to_version) == ("kept", "1", "1")
    assert last.run == "unchanged-run" and "not clearly better" in last.reason


def test_a_run_whose_champion_moved_registers_but_does_not_promote(
    store: MlflowStore, name: str
) -> None:
    """promote() as the quality-gate flow calls it: version + challenger, champion refused."""
    (v1,) = promoted_in_turn(store, name, "pass")
    outcome, run, run_id = winner_run(store, name, "late-run")
    got = register_and_promote(store, REGISTRY, run, outcome, {"int8": run_id}, None)
    assert got.refused and not got.moved and got.version == str(int(v1) + 1)
    assert "champion moved from unset to version 1" in got.reason
    assert champion(store, name) == v1
    assert store.alias_version(name, "challenger") == got.version
    assert store.version_tags(name, got.version)["edgeproof.precision"] == "int8"
    assert moves(store, name)[-1] == ("refused", v1, got.version)


# --- every wait is bounded and polite; a lock edgeproof did not make is refused at once


@pytest.fixture
def requests_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Endpoints of every MLflow REST request this process makes (counted, then sent)."""
    from mlflow.utils import rest_utils

    made: list[str] = []
    real = rest_utils.http_request

    def counted(*args: object, **kwargs: object) -> object:
        made.append(str(kwargs.get("endpoint", args[1] if len(args) > 1 else "?")))
        return real(*args, **kwargs)

    monkeypatch.setattr(rest_utils, "http_request", counted)
    return made


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        ({}, "no owner/time tags"),
        ({"edgeproof.lock.owner": "someone"}, "no owner/time tags"),
        ({"edgeproof.lock.owner": "x", "edgeproof.lock.since": "soon"}, "is not a time"),
        ({"edgeproof.lock.owner": "x", "edgeproof.lock.since": "99999999999"}, "in the future"),
    ],
    ids=["no-tags", "no-time", "bad-time", "future-time"],
)
def test_a_lock_edgeproof_did_not_make_is_refused_at_once_never_deleted(
    store: MlflowStore, name: str, requests_made: list[str], tags: dict[str, str], why: str
) -> None:
    """The lock loop used to ``continue`` on a tag-less lock before its deadline check and
    its sleep: 14,871 requests in 3 minutes. Now: one line, at once, the lock left alone."""
    from edgeproof.tracking.access import ForeignName

    (v1,) = make_versions(store, name, "pass")
    assert store.create_model_if_absent(lock_name(name), tags, "not edgeproof's")
    patient = REGISTRY.model_copy(update={"lock_timeout_seconds": 60.0})
    requests_made.clear()
    started = time.monotonic()
    with pytest.raises(ForeignName) as refused:
        move_champion(
            store, patient, name, to_version=v1, expected=None, action="promote", run="r",
            reason="x",
        )  # fmt: skip
    assert time.monotonic() - started < 10 and len(requests_made) <= 5, requests_made
    message = str(refused.value)
    assert "\n" not in message and why in message
    assert f"registry lock '{lock_name(name)}' is not edgeproof's" in message
    assert "an MLflow admin deletes that registered model" in message
    assert store.registered_model(lock_name(name)) is not None  # never broken
    assert champion(store, name) is None and moves(store, name) == []
    store.delete_model(lock_name(name))


def test_a_live_lock_is_polled_with_backoff_until_the_deadline(
    store: MlflowStore, name: str, requests_made: list[str]
) -> None:
    (v1,) = make_versions(store, name, "pass")
    held = {"edgeproof.lock.owner": "run-other", "edgeproof.lock.since": f"{time.time():.3f}"}
    assert store.create_model_if_absent(lock_name(name), held, "held by a test")
    impatient = REGISTRY.model_copy(update={"lock_timeout_seconds": 4.0})
    requests_made.clear()
    started = time.monotonic()
    with pytest.raises(RegistryConflict, match="is held by run-other"):
        move_champion(
            store, impatient, name, to_version=v1, expected=None, action="promote", run="r",
            reason="x",
        )  # fmt: skip
    elapsed = time.monotonic() - started
    attempts = sum(1 for e in requests_made if e.endswith("registered-models/create"))
    # 0.25 s growing 1.5x (jittered) to 2 s: a handful of attempts in 4 s, not thousands
    assert 4.0 <= elapsed < 4.0 + 2.0 + 5.0, elapsed
    assert 3 <= attempts <= 14, requests_made
    assert len(requests_made) <= 4 * attempts + 2, requests_made
    assert champion(store, name) is None
    store.delete_model(lock_name(name))


def test_a_model_never_seen_has_no_champion_and_its_names_are_checked(
    store: MlflowStore, requests_made: list[str]
) -> None:
    """The first run of a model: no registered model yet is "no champion", not an error."""
    from edgeproof.tracking.access import ForeignName
    from edgeproof.tracking.names import check_names, claim_names
    from edgeproof.tracking.pipeline_run import champions_now

    model = f"new{uuid.uuid4().hex[:8]}"
    name = f"{model}.onnxruntime-cpu"
    assert store.alias_version(name, "champion") is None
    assert champions_now(store, REGISTRY, model, ["onnxruntime-cpu"]) == {"onnxruntime-cpu": None}
    assert store.registered_model(name) is None  # reading created nothing
    states = claim_names(store, REGISTRY, model, ["onnxruntime-cpu"])
    assert [(s.name, s.state) for s in states] == [
        (f"experiment {model!r}", "created"),
        (name, "created"),
        (lock_name(name), "absent"),
    ]
    again = claim_names(store, REGISTRY, model, ["onnxruntime-cpu"])
    assert [s.state for s in again] == ["ours", "ours", "absent"]
    assert store.create_model_if_absent(lock_name(name), {}, "tag-less")
    with pytest.raises(ForeignName, match=rf"registry lock '{lock_name(name)}' is not"):
        check_names(store, REGISTRY, model, ["onnxruntime-cpu"])
    store.delete_model(lock_name(name))


def test_a_foreign_lock_met_at_promotion_refuses_the_move_and_names_the_lock(
    store: MlflowStore, name: str
) -> None:
    """promote() as the flow calls it: the version is registered, champion not moved."""
    (v1,) = promoted_in_turn(store, name, "pass")
    assert store.create_model_if_absent(lock_name(name), {}, "tag-less")
    outcome, run, run_id = winner_run(store, name, "blocked-run")
    got = register_and_promote(store, REGISTRY, run, outcome, {"int8": run_id}, v1)
    assert got.refused and not got.moved and champion(store, name) == v1
    assert f"registry lock '{lock_name(name)}' is not edgeproof's" in got.reason
    store.delete_model(lock_name(name))
