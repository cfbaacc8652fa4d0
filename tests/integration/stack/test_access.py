"""Access control and secrets on the PostgreSQL-backed, basic-auth MLflow server."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import psutil
import pytest

from edgeproof.errors import TrackingError
from edgeproof.tracking.alias_lock import lock_name
from edgeproof.tracking.audit import read_history
from tests.helpers import BIN, champion, make_versions, moves, promote
from tests.integration.stack.conftest import RunningStack


def test_a_reader_cannot_move_the_champion_or_delete_a_version(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"acl{uuid.uuid4().hex[:8]}.onnxruntime-cpu"
    ci = stack.store("ci", monkeypatch)
    v1, v2 = make_versions(ci, name, "pass", "pass")
    promote(ci, name, v1, None)
    history = moves(ci, name)

    reviewer = stack.store("reviewer", monkeypatch)
    assert champion(reviewer, name) == v1  # a reviewer reads
    with pytest.raises(TrackingError) as moved:
        promote(reviewer, name, v2, expected=v1)
    message = str(moved.value)
    assert "\n" not in message
    # the stack lets only CI create registered models: refused at the lock, or at the move
    assert (
        f"cannot create registered model '{lock_name(name)}'" in message
        or f"cannot set alias 'champion' of '{name}'" in message
    ), message
    assert "Permission denied" in message or "PERMISSION_DENIED" in message
    with pytest.raises(Exception, match=r"(?i)permission"):
        reviewer.client.delete_model_version(name, v1)
    with pytest.raises(Exception, match=r"(?i)permission"):
        reviewer.client.delete_registered_model_alias(name, "champion")

    ci = stack.store("ci", monkeypatch)
    assert champion(ci, name) == v1
    assert moves(ci, name) == history
    assert ci.version_tags(name, v1) is not None
    assert ci.registered_model_tags(lock_name(name)) == {}  # the reader's lock was released
    promote(ci, name, v2, expected=v1)  # the CI identity still can
    assert champion(ci, name) == v2


def test_cli_as_a_reader_fails_in_one_line_and_moves_nothing(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.helpers import registry_params

    name = "cli.onnxruntime-cpu"
    ci = stack.store("ci", monkeypatch)
    v1, v2 = make_versions(ci, name, "pass", "pass")
    promote(ci, name, v1, champion(ci, name))
    promote(ci, name, v2, v1)
    before = moves(ci, name)
    done = subprocess.run(
        [
            *(str(BIN / "edgeproof"), "rollback", "--target", "onnxruntime-cpu"),
            *("--reason", "try", "--params", str(registry_params(tmp_path))),
        ],
        env=stack.client_env(tmp_path, "reviewer"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeproof: error: MLflow: cannot"), lines
    assert champion(ci, name) == v2 and moves(ci, name) == before


def test_no_credential_in_logs_params_tags_or_command_lines(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = f"sec{uuid.uuid4().hex[:8]}.onnxruntime-cpu"
    ci = stack.store("ci", monkeypatch)
    (v1,) = make_versions(ci, name, "pass")
    promote(ci, name, v1, None)
    experiment = ci.experiment("registry-tests")
    run = ci.start_run(experiment, "secrets-check")
    ci.log(run, params={"p": 1}, tags={"t": "x"})
    ci.end(run)
    secrets = stack.secrets()
    assert all(len(s) >= 16 for s in secrets)

    # a wrong password: refused in one line that does not repeat it
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-" + secrets[0])
    with pytest.raises(TrackingError) as refused:
        stack_store_read(name)
    assert secrets[0] not in str(refused.value)
    stack.store("ci", monkeypatch)

    seen: list[str] = []
    admin = stack.store("admin", monkeypatch)
    for found in admin.client.search_runs([experiment], max_results=500):
        seen += [*found.data.params.values(), *found.data.tags.values()]
    for model in admin.client.search_registered_models(max_results=500):
        seen += [*model.tags.values(), model.description or ""]
        for version in admin.client.search_model_versions(f"name = '{model.name}'"):
            seen += [*version.tags.values(), version.source or ""]
    seen += [log.read_text(errors="replace") for log in (stack.folder / "logs").glob("*.log")]
    seen.append((stack.folder / "stack.env").read_text())
    for proc in psutil.process_iter(["cmdline"]):
        seen.append(" ".join(proc.info["cmdline"] or []))
    leaked = [s[:4] + "…" for s in secrets if any(s in text for text in seen)]
    assert not leaked, f"credentials found in logs, params, tags or command lines: {leaked}"
    modes = {p.name: p.stat().st_mode & 0o777 for p in (stack.folder / "secrets").iterdir()}
    assert set(modes.values()) == {0o600}, modes
    assert (stack.folder / "secrets").stat().st_mode & 0o777 == 0o700


def stack_store_read(name: str) -> None:
    """Read ``name`` through a new store made from the current environment."""
    from edgeproof.config import TrackingConfig
    from edgeproof.tracking.mlflow_store import MlflowStore

    MlflowStore(TrackingConfig()).registered_model_tags(name)


@pytest.mark.slow  # about a minute: four racers, each its own Python and MLflow client
def test_the_audit_history_is_complete_after_concurrent_promotions(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """N racing promoters (separate processes, as CI jobs would be) on PostgreSQL."""
    import sys
    import time

    from tests.helpers import RACE_LOST, RACER, ROOT

    racers_n = 4
    name = f"race{uuid.uuid4().hex[:8]}.onnxruntime-cpu"
    ci = stack.store("ci", monkeypatch)
    v1, *others = make_versions(ci, name, *["pass"] * (racers_n + 1))
    promote(ci, name, v1, None)
    env = {**stack.client_env(tmp_path, "ci"), "PYTHONPATH": str(ROOT)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, name, version, v1, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for version in others
    ]
    deadline = time.monotonic() + 180
    while not all((tmp_path / f"ready-{v}").exists() for v in others):
        assert time.monotonic() < deadline, "racers did not start"
        assert all(r.poll() is None for r in racers), [r.communicate()[0] for r in racers]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    codes = [r.wait(timeout=300) for r in racers]
    outputs = [r.communicate()[0] for r in racers]
    assert sorted(codes) == [0] + [RACE_LOST] * (racers_n - 1), outputs
    winner = others[codes.index(0)]
    assert champion(ci, name) == winner
    events = read_history(ci, name)
    assert [e.seq for e in events] == list(range(1, racers_n + 2)), outputs  # no gap, no dup
    assert [(e.action, e.from_version, e.to_version) for e in events[:2]] == [
        ("promote", None, v1),
        ("promote", v1, winner),
    ]
    refused = sorted(e.to_version for e in events[2:] if e.action == "refused")
    assert refused == sorted(v for v in others if v != winner)
    assert all(e.from_version == winner for e in events[2:])
    assert ci.registered_model_tags(lock_name(name)) == {}


def test_prefect_needs_its_auth_string_and_keeps_its_data_in_postgres(
    stack: RunningStack,
) -> None:
    import base64
    import json
    import urllib.error
    import urllib.request

    from tests.integration.stack.conftest import load_stack_module

    name = f"stack-check-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"name": name}).encode()
    request = urllib.request.Request(
        f"{stack.prefect_api}/flows/", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    auth = base64.b64encode(stack.credentials["PREFECT_API_AUTH_STRING"].encode()).decode()
    request.add_header("Authorization", f"Basic {auth}")
    with urllib.request.urlopen(request, timeout=30) as created:
        assert created.status in (200, 201)
    bindir = load_stack_module().pg_bindir()
    found = subprocess.run(
        [
            *(str(bindir / "psql"), "-h", "127.0.0.1", "-p", stack.env["EDGEPROOF_STACK_PG_PORT"]),
            *("-U", "prefect", "-d", "prefect", "-qAt", "-w"),
            *("-c", f"SELECT count(*) FROM flow WHERE name = '{name}'"),
        ],
        env={"PGPASSFILE": str(stack.folder / "secrets" / "pgpass"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "1"
