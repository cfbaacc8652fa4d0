"""Build a copy of the repository's example project in a temp folder, for real, with DVC.

The copy has its own git repository, DVC cache and local DVC remote; ``dvc repro`` runs the
repository's own stages (``edgeproof example prepare`` / ``train``) with the example made
smaller so the build takes seconds, not minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL_EXAMPLE = {"image_size": 32, "eval_size": 400, "calibration_size": 100, "epochs": 3}


def tool_env(project: Path) -> dict[str, str]:
    """Environment for subprocesses: the venv's tools first, telemetry off, local homes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_HOME=str(project / ".prefect"),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        GIT_AUTHOR_NAME="edgeproof-tests",
        GIT_AUTHOR_EMAIL="tests@example.invalid",
        GIT_COMMITTER_NAME="edgeproof-tests",
        GIT_COMMITTER_EMAIL="tests@example.invalid",
    )
    return env


def run(
    args: list[str], cwd: Path, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in ``cwd`` with ``tool_env`` plus ``env``; output captured."""
    return subprocess.run(
        args,
        cwd=cwd,
        env={**tool_env(cwd), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check(args: list[str], cwd: Path, timeout: float = 900) -> str:
    done = run(args, cwd, timeout)
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


def build_example_project(dest: Path, **example: object) -> Path:
    """Copy params/dvc files and the example sources, then git init, dvc repro, dvc push."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in ("dvc.yaml", "edgeproof/example/data.py", "edgeproof/example/train.py"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dest / rel)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["example"].update({**SMALL_EXAMPLE, **example})
    write_params(dest / "params.yaml", params)
    (dest / ".gitignore").write_text(
        "/mlflow.db\n/mlartifacts/\n/reports/\n/.prefect/\n/.dvcstore/\n"
    )
    check(["git", "init", "-q", "-b", "main"], dest)
    check(["dvc", "init", "-q"], dest)
    check(["dvc", "config", "core.analytics", "false"], dest)
    check(["dvc", "remote", "add", "-d", "local", str(dest / ".dvcstore")], dest)
    check(["dvc", "repro", "-q"], dest)
    check(["dvc", "push", "-q"], dest)
    check(["git", "add", "-A"], dest)
    check(["git", "commit", "-q", "-m", "example"], dest)
    return dest


def write_params(path: Path, params: dict) -> None:
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def load_params_dict(project: Path) -> dict:
    return yaml.safe_load((project / "params.yaml").read_text())
