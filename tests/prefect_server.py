"""A real ``prefect server`` and ``prefect worker`` processes on 127.0.0.1 for integration tests.

The server keeps its sqlite database under ``PREFECT_HOME`` in a temp folder, is started on
a free port and is ready when ``/api/health`` answers. Workers are started in a new session
with SIGINT reset to its default (a worker started from a non-interactive shell inherits an
ignored SIGINT, and then a SIGTERM does not stop it: docs/architecture.md, "Prefect facts").
Every process is stopped by its PID, together with everything it started (flow-run
processes run in their own sessions), and ``stop`` returns only once all of them are gone.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from tests.health import wait_healthy
from tests.helpers import BIN, tool_env
from tests.mlflow_server import free_port

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


def _default_sigint() -> None:
    """Child side, before exec: SIGINT back to default (a background shell ignores it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Process:
    """One started command (its own session) and the processes it spawns."""

    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                list(args),
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_sigint,
            )
        self.pid = self.proc.pid
        self.stopped: list[int] = []  # every PID signalled by stop()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def family(self) -> list[psutil.Process]:
        """This process and its live descendants (flow-run processes of a worker too)."""
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the process and its descendants, SIGKILL what is left after
        ``timeout``; returns once every one of them has exited (reaped)."""
        family = self.family()
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.terminate()
        _, alive = psutil.wait_procs(family, timeout=timeout)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(alive, timeout=10)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.stopped.extend(m.pid for m in family)

    def gone(self) -> bool:
        """Whether the process and every descendant seen at ``stop`` have exited."""
        if self.alive():
            return False
        for pid in self.stopped:
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    return False
        return True


class Worker(Process):
    """A ``prefect worker start`` process; ``pool`` and ``name`` set by ``start_worker``."""

    pool: str
    name: str


class PrefectServer:
    """``prefect server start`` with PREFECT_HOME in ``folder``; workers on its pools."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.server: Process | None = None
        self.workers: list[Worker] = []
        folder.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of every process talking to this server (workers, CLI calls)."""
        return {
            **tool_env(self.folder),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            **extra,
        }

    def launch(self) -> PrefectServer:
        """Start the server process; ``wait_healthy`` before using it."""
        env = {
            **tool_env(self.folder),
            "PREFECT_SERVER_UI_ENABLED": "false",
            # no scheduled runs (e.g. verify-champion's cron) may start during a test
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        }
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
        command += ["--port", str(self.port)]
        self.server = Process(command, env, self.folder, self.folder / "server.log")
        return self

    def wait_healthy(self, timeout: float = 120.0) -> PrefectServer:
        assert self.server is not None, "launch() first"
        server = self.server
        wait_healthy(f"{self.api_url}/health", server.alive, server.tail, "prefect server", timeout)
        return self

    def cli(self, *args: str, cwd: Path, timeout: float = 300, **env: str) -> str:
        """Run ``prefect ARGS`` against this server; its stdout (asserts exit code 0)."""
        done = self.run(*args, cwd=cwd, timeout=timeout, **env)
        assert done.returncode == 0, f"prefect {args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def run(
        self, *args: str, cwd: Path, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_worker(self, pool: str, cwd: Path, **env: str) -> Worker:
        """``prefect worker start --pool POOL`` under a unique name (the pool must exist)."""
        name = f"worker-{pool}-{len(self.workers)}"
        command = [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--name", name]
        command += ["--type", "process"]
        worker = Worker(command, self.env(**env), cwd, self.folder / f"{name}.log")
        worker.pool, worker.name = pool, name
        self.workers.append(worker)
        return worker

    @contextlib.contextmanager
    def client(self) -> Iterator[SyncPrefectClient]:
        """A sync Prefect client of this process, pointed at this server for the block."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

        home = self.folder / ".prefect"
        with (
            temporary_settings({PREFECT_API_URL: self.api_url, PREFECT_HOME: home}),
            get_client(sync_client=True) as client,
        ):
            yield client

    def wait_online(self, workers: Sequence[Worker], timeout: float = 60.0) -> None:
        """Until each of ``workers`` has sent a heartbeat to its pool (status ONLINE)."""
        from prefect.client.schemas.objects import WorkerStatus

        deadline = time.monotonic() + timeout
        with self.client() as client:
            for worker in workers:
                while not any(
                    w.name == worker.name and w.status == WorkerStatus.ONLINE
                    for w in client.read_workers_for_work_pool(worker.pool)
                ):
                    assert worker.alive(), f"{worker.name} exited:\n{worker.tail()}"
                    assert time.monotonic() < deadline, f"{worker.name} not online"
                    time.sleep(0.2)

    def processes(self) -> list[Process]:
        return [*self.workers, *([self.server] if self.server else [])]

    def stop(self) -> None:
        """Workers first (they report to the server), then the server."""
        for process in self.processes():
            process.stop()


def stop_all(processes: Sequence[Process]) -> list[int]:
    """Stop each process; the PIDs of any that are still there (should be none)."""
    for process in processes:
        process.stop()
    return [p.pid for p in processes if not p.gone()]
