"""Faults past pre-flight: the MLflow store unreachable, read-only or out of disk, the data
gate refusing the data, and secrets in the environment of a real run.

Each starts ``edgeproof run`` as a user would (Prefect's temporary server, MLflow in the
project folder or on a server) and checks the one-line error, the exit code, that no
traceback is shown, and what the run may and may not have changed:

- unreachable-store   MLFLOW_TRACKING_URI at a closed port: exit 2, "MLflow: cannot get or
                      create experiment 'tiny': tracking server http://127.0.0.1:P
                      unreachable (Connection refused)"; the project folder unchanged.
- read-only-store     the store on a filesystem remounted read-only (as root, where chmod
                      does not stop writes; chmod otherwise): exit 2, "MLflow: cannot start
                      run ...: attempt to write a readonly database"; nothing changed.
- full-artifact-disk  mlartifacts on a full 1 MiB tmpfs (root only): exit 2, "MLflow: cannot
                      log artifact params.yaml: [Errno 28] No space left on device"; the
                      registry is untouched, no report, and the one run record that was
                      created first is ended FAILED with the error as a tag (not RUNNING).
- data-gate           NaN and an out-of-range label with the data gate on: exit 2, "data
                      gate: N expectation(s) failed (first: ...)"; nothing optimized or
                      registered, the parent run FAILED, the report written (by design).
- secrets             tokens in the environment of a complete (short) run: no file of the
                      project (mlflow.db, mlartifacts, reports) nor the output holds them.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.reliability.project import (
    REGISTERED,
    assert_refused,
    edgeproof,
    leftovers,
    run_tags,
    seed_store,
    set_param,
    snapshot,
    store_state,
)
from tests.helpers import write_npz
from tests.mlflow_server import free_port

IS_ROOT = os.geteuid() == 0
SECRETS = {
    "MLFLOW_TRACKING_TOKEN": "edgeproof-secret-mlflow-XYZ",
    "MLFLOW_TRACKING_PASSWORD": "edgeproof-secret-password-XYZ",
    "AWS_SECRET_ACCESS_KEY": "edgeproof-secret-aws-XYZ",
    "GITHUB_TOKEN": "edgeproof-secret-github-XYZ",
}


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@contextmanager
def tmpfs(mountpoint: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs on ``mountpoint`` (root only; the test is skipped otherwise)."""
    if not IS_ROOT:
        pytest.skip("mounting a size-limited tmpfs needs root (CAP_SYS_ADMIN)")
    mountpoint.mkdir(parents=True, exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=30)


def fill(folder: Path) -> None:
    """Write into ``folder`` until its filesystem reports ENOSPC."""
    chunk = b"\0" * 65536
    with (folder / "filler").open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    with pytest.raises(OSError, match="No space left"):
        (folder / "probe").write_bytes(b"x" * 4096)


def writes_refused(folder: Path) -> bool:
    """True when creating a file in ``folder`` fails (the store really is read-only)."""
    try:
        (folder / "write-probe").write_bytes(b"x")
    except OSError:
        return True
    (folder / "write-probe").unlink()
    return False


def test_unreachable_mlflow_server(project: Path, prefect_home: Path, scratch: Path) -> None:
    before = snapshot(project)
    done = edgeproof(
        project,
        prefect_home=prefect_home,
        scratch=scratch,
        env={
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "2",
        },
    )
    assert_refused(
        done,
        2,
        r"^edgeproof: error: MLflow: cannot get or create experiment 'tiny': "
        r"tracking server http://127\.0\.0\.1:\d+ unreachable \(Connection refused\)$",
    )
    assert snapshot(project) == before  # no mlflow.db, mlartifacts or reports appeared
    assert leftovers(scratch) == []


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` (holding a seeded store) read-only, by a means that binds root too."""
    if IS_ROOT:  # root ignores file modes: a read-only filesystem stops it
        with tmpfs(folder, "16m"):
            seed_store(folder)
            done = _mount("-o", "remount,ro", str(folder))
            assert done.returncode == 0, done.stderr
            yield
        return
    seed_store(folder)
    modes = {p: p.stat().st_mode for p in (folder, folder / "mlflow.db")}
    (folder / "mlflow.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def test_read_only_mlflow_store(project: Path, prefect_home: Path, scratch: Path) -> None:
    set_param(project, "tracking.uri", "sqlite:///store/mlflow.db")
    set_param(project, "tracking.artifact_location", "store/mlartifacts")
    with read_only(project / "store"):
        assert writes_refused(project / "store")
        before = snapshot(project)
        state = store_state(project / "store" / "mlflow.db")
        done = edgeproof(project, prefect_home=prefect_home, scratch=scratch)
        assert_refused(
            done,
            2,
            r"MLflow: cannot start run 'tiny-[^']+': attempt to write a readonly database "
            r"\(sqlite3\.OperationalError\)$",
        )
        assert snapshot(project) == before
        assert store_state(project / "store" / "mlflow.db") == state
    assert leftovers(scratch) == []


def outside_store(entries: dict[str, str]) -> dict[str, str]:
    """Snapshot entries other than the MLflow store (mlflow.db, mlartifacts/)."""
    return {k: v for k, v in entries.items() if not k.startswith(("mlflow.db", "mlartifacts"))}


def test_full_artifact_disk(project: Path, prefect_home: Path, scratch: Path) -> None:
    with tmpfs(project / "mlartifacts", "1m") as artifacts:
        seed_store(project)  # mlflow.db on the real disk, artifacts on the small one
        fill(artifacts)
        before = snapshot(project)
        state = store_state(project / "mlflow.db")
        done = edgeproof(project, prefect_home=prefect_home, scratch=scratch)
        assert_refused(
            done,
            2,
            r"MLflow: cannot log artifact params\.yaml: \[Errno 28\] No space left on device$",
        )
        after = store_state(project / "mlflow.db")
        assert outside_store(snapshot(project)) == outside_store(before)
    assert not (project / "reports").exists()
    assert leftovers(scratch) == []
    assert (after.versions, after.aliases) == (state.versions, state.aliases)
    assert after.aliases == ((REGISTERED, "champion", "1"),)
    (new_run,) = set(after.runs) - set(state.runs)  # the parent run, created before the write
    assert new_run[1] == "FAILED", after.runs  # ended, not left RUNNING
    tags = run_tags(project / "mlflow.db", new_run[0])
    assert "No space left on device" in tags["edgeproof.error"]


def test_data_gate_refuses_bad_values_and_registers_nothing(
    project: Path, prefect_home: Path, scratch: Path
) -> None:
    x = np.random.default_rng(5).random((64, 1, 16, 16), dtype=np.float32)
    x[3, 0, 0, 0] = np.nan
    y = (np.arange(64) % 10).astype(np.int64)
    y[5] = 42
    write_npz(project / "data" / "eval.npz", input=x, labels=y)
    seed_store(project)
    state = store_state(project / "mlflow.db")
    done = edgeproof(project, prefect_home=prefect_home, scratch=scratch)
    assert_refused(
        done,
        2,
        r"data gate: \d+ expectation\(s\) failed \(first: eval: .+\); "
        r"nothing was optimized or registered$",
    )
    assert "finite" in done.stdout and "42" in done.stdout  # the report lists every failure
    after = store_state(project / "mlflow.db")
    assert (after.versions, after.aliases) == (state.versions, state.aliases)
    (new_run,) = set(after.runs) - set(state.runs)  # the parent run only: no target, candidate
    assert new_run[1] == "FAILED"
    assert run_tags(project / "mlflow.db", new_run[0])["edgeproof.data_gate"] == "fail"
    (verdict,) = (project / "reports").glob("*/verdict.json")
    assert json.loads(verdict.read_text(encoding="utf-8"))["status"] == "error"
    assert leftovers(scratch) == []


def files_holding(folder: Path, needles: list[str]) -> dict[str, list[str]]:
    """Files under ``folder`` (symlinks not followed) containing any of ``needles``."""
    found: dict[str, list[str]] = {}
    for dirpath, _, filenames in os.walk(folder, followlinks=False):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            data = path.read_bytes()
            hits = [n for n in needles if n.encode() in data]
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def test_secrets_in_the_environment_are_never_written(
    project: Path, prefect_home: Path, scratch: Path
) -> None:
    gates = {
        "accuracy": {"max_drop_abs": 1.0},
        "fidelity": {"min_top1_agreement": 0.0, "max_kl": None},
        "latency": {"min_speedup": None},
        "on_inconclusive": "warn",
    }
    set_param(project, "gates", gates)
    done = edgeproof(project, prefect_home=prefect_home, scratch=scratch, env=SECRETS)
    assert done.returncode in (0, 1), done.explain()
    assert done.error_lines() == [] and "Traceback" not in done.stderr, done.explain()
    written = {p.split("/")[0] for p in snapshot(project)}
    assert {"mlflow.db", "mlartifacts", "reports"} <= written  # the run did write its records
    tokens = list(SECRETS.values())
    assert files_holding(project, tokens) == {}
    assert not [t for t in tokens if t in done.stdout + done.stderr]
    assert leftovers(scratch) == []
    # the search itself finds a planted token
    (project / "reports" / "canary.txt").write_text(f"x{tokens[0]}x", encoding="utf-8")
    assert files_holding(project, tokens) == {"reports/canary.txt": [tokens[0]]}
