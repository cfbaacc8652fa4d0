"""A tiny project folder for ``edgeproof run``, the CLI as a subprocess, and "nothing changed".

The project is what a user has: ``model.onnx`` (the tiny CNN from ``tests/builders.py``),
``data/eval.npz`` and ``data/calibration.npz``, and a small ``params.yaml`` (one
onnxruntime-cpu target with a dynamic recipe, MLflow in a sqlite file in the folder).
``snapshot`` hashes every file, folder and symlink under it, so a test can prove that a
refused run wrote, changed and deleted nothing. MLflow's store is read with ``sqlite3``
(read-only, closed at once) so the test process never holds the database open.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import BIN, tool_env

ERROR_PREFIX = "edgeproof: error: "
REGISTERED = "tiny.onnxruntime-cpu"  # registry.model_name for model "tiny" on the one target

# Run in a subprocess (cwd = a store folder): an MLflow store as a previous run leaves it,
# experiment "tiny", one finished run, registered model v1 with alias "champion". A
# subprocess, so that no database handle stays open in the test process.
SEED_SCRIPT = """
import sys
from pathlib import Path
from mlflow import MlflowClient

db, artifacts = sys.argv[1], Path(sys.argv[2]).resolve()
client = MlflowClient(tracking_uri=db, registry_uri=db)
experiment = client.create_experiment("tiny", artifact_location=artifacts.as_uri())
run = client.create_run(experiment, run_name="seed").info.run_id
client.log_text(run, "weights of an earlier champion", "model/model.txt")
client.set_terminated(run)
client.create_registered_model("tiny.onnxruntime-cpu")
source = client.get_run(run).info.artifact_uri + "/model"
version = client.create_model_version("tiny.onnxruntime-cpu", source=source, run_id=run)
client.set_registered_model_alias("tiny.onnxruntime-cpu", "champion", version.version)
"""


def base_params() -> dict[str, Any]:
    """params.yaml of the tiny project: valid, small, with a short measurement."""
    return {
        "model": {"name": "tiny", "path": "model.onnx"},
        "data": {
            "eval": "data/eval.npz",
            "calibration": "data/calibration.npz",
            "checks": {"min_eval_rows": 10, "min_calibration_rows": 10},
        },
        "targets": {"onnxruntime-cpu": {"recipes": [{"name": "dyn", "method": "dynamic"}]}},
        "measure": {"warmup_runs": 5, "min_samples": 50, "max_samples": 100, "max_seconds": 3},
        "tracking": {"uri": "sqlite:///mlflow.db", "artifact_location": "mlartifacts"},
    }


def build_project(folder: Path, model: Path, data: dict[str, Path]) -> Path:
    """Copy the tiny model and data into ``folder`` and write ``params.yaml``; the folder."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(model, folder / "model.onnx")
    for split, src in data.items():
        shutil.copy(src, folder / "data" / f"{split}.npz")
    write_params(folder, base_params())
    return folder


def read_params(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))


def write_params(project: Path, params: Any) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), "utf-8")


def set_param(project: Path, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in the project's params.yaml, creating sections on the way."""
    params = read_params(project)
    *sections, key = dotted.split(".")
    node = params
    for section in sections:
        node = node.setdefault(section, {})
    node[key] = value
    write_params(project, params)


def seed_store(store: Path, db_uri: str | None = None, artifacts: Path | None = None) -> None:
    """Write an MLflow store with a champion into ``store`` (see ``SEED_SCRIPT``)."""
    store.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            SEED_SCRIPT,
            db_uri or f"sqlite:///{store / 'mlflow.db'}",
            str(artifacts or store / "mlartifacts"),
        ],
        cwd=store,
        env=tool_env(store),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"seeding the MLflow store failed:\n{done.stderr[-3000:]}"


@dataclass(frozen=True)
class StoreState:
    """What a run could change in MLflow: runs (name, status) and the registry."""

    runs: tuple[tuple[str, str], ...]
    versions: tuple[tuple[str, str], ...]  # (registered model, version)
    aliases: tuple[tuple[str, str, str], ...]  # (registered model, alias, version)


def store_state(db: Path) -> StoreState:
    """Runs and registry of the sqlite MLflow store ``db`` (opened read-only)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        runs = connection.execute("SELECT name, status FROM runs ORDER BY start_time").fetchall()
        versions = connection.execute(
            "SELECT name, version FROM model_versions ORDER BY name, version"
        ).fetchall()
        aliases = connection.execute(
            "SELECT name, alias, version FROM registered_model_aliases ORDER BY name, alias"
        ).fetchall()
    finally:
        connection.close()
    return StoreState(
        runs=tuple((str(n), str(s)) for n, s in runs),
        versions=tuple((str(n), str(v)) for n, v in versions),
        aliases=tuple((str(n), str(a), str(v)) for n, a, v in aliases),
    )


def run_tags(db: Path, run_name: str) -> dict[str, str]:
    """Tags of the run named ``run_name`` in the sqlite MLflow store ``db``."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT t.key, t.value FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
            "WHERE r.name = ?",
            (run_name,),
        ).fetchall()
    finally:
        connection.close()
    return {str(k): str(v) for k, v in rows}


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: file -> sha256, folder -> "dir", symlink -> its target.

    Symlinks are recorded, never followed (a test project may hold a symlink loop).
    """
    entries: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                entries[rel] = f"symlink -> {os.readlink(path)}"
            elif path.is_dir():
                entries[rel] = "dir"
            else:
                entries[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


@dataclass(frozen=True)
class Done:
    """A finished ``edgeproof`` subprocess."""

    returncode: int
    stdout: str
    stderr: str

    def error_lines(self) -> list[str]:
        """stderr lines that are edgeproof's own error report."""
        return [line for line in self.stderr.splitlines() if line.startswith(ERROR_PREFIX)]

    def explain(self) -> str:
        """Exit code and the tails of stdout and stderr, for assertion messages."""
        tails = f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-5000:]}"
        return f"exit {self.returncode}\n{tails}"


def edgeproof(
    project: Path,
    *args: str,
    prefect_home: Path,
    scratch: Path,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> Done:
    """``edgeproof run --params params.yaml ARGS`` in ``project``, as a user runs it.

    Prefect keeps its home in ``prefect_home`` and temporary files go to ``scratch``
    (TMPDIR), both outside the project; pytest's own variables are not passed on (MLflow
    changes its behaviour under PYTEST_CURRENT_TEST).
    """
    done = subprocess.run(
        run_command(*args),
        cwd=project,
        env=cli_env(project, prefect_home, scratch, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Done(done.returncode, done.stdout, done.stderr)


def run_command(*args: str) -> list[str]:
    """``edgeproof run ARGS`` (with ``--params params.yaml`` unless given)."""
    command = [str(BIN / "edgeproof"), "run", *args]
    return command if "--params" in args else [*command, "--params", "params.yaml"]


def cli_env(
    project: Path, prefect_home: Path, scratch: Path, env: dict[str, str] | None = None
) -> dict[str, str]:
    """The CLI's environment: tools first, Prefect home and TMPDIR outside the project."""
    full_env = {
        k: v for k, v in tool_env(project).items() if not k.startswith(("PYTEST_", "_PYTEST"))
    }
    scratch.mkdir(parents=True, exist_ok=True)
    full_env.update(PREFECT_HOME=str(prefect_home), TMPDIR=str(scratch), **(env or {}))
    return full_env


def assert_refused(done: Done, exit_code: int, pattern: str) -> str:
    """Exit ``exit_code``, exactly one error line matching ``pattern``, no traceback."""
    assert done.returncode == exit_code, done.explain()
    lines = done.error_lines()
    assert len(lines) == 1, f"expected one '{ERROR_PREFIX}' line, got {lines}\n{done.explain()}"
    assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert "Traceback" not in done.stdout + done.stderr, done.explain()
    return lines[0]


def leftovers(scratch: Path) -> list[str]:
    """edgeproof's own temporary folders left in ``scratch`` (candidate model files)."""
    return sorted(p.name for p in scratch.glob("edgeproof-*"))
