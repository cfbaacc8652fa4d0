"""A real ``mlflow server`` process on 127.0.0.1 for integration tests.

sqlite backend and a local artifact folder in a temp directory; started on a free port,
ready when ``/health`` answers, stopped (or killed, to test failures) by the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

from tests.health import wait_healthy
from tests.helpers import BIN, tool_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """``mlflow server`` with its store in ``folder``; ``uri`` once started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 120.0) -> MlflowServer:
        command = [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        log = (self.folder / "server.log").open("ab")
        self.proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            # no job runner: it starts worker processes that outlive a SIGTERM of the server
            env={**tool_env(self.folder), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            start_new_session=True,  # its own process group: uvicorn workers die with it
        )
        proc = self.proc
        try:
            wait_healthy(
                f"{self.uri}/health",
                lambda: proc.poll() is None,
                lambda: (
                    f"code {proc.returncode}: "
                    + (self.folder / "server.log").read_text(errors="replace")[-2000:]
                ),
                "mlflow server",
                timeout,
            )
        except RuntimeError:
            self.stop()
            raise
        return self

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL to the server and its workers: it dies as on a crash, mid-request."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self._signal_group(signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
