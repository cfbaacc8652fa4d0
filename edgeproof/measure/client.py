"""Parent side of the measurement subprocess: start, ask, time out, kill.

Every request has a deadline. A worker that hangs is killed (its whole process group),
one that dies is reported with its signal or exit code, the tail of its stderr and its
last seconds of RSS (sampled from here while it runs): the candidate fails with that
reason and the pipeline goes on with the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

from edgeproof.errors import MeasurementError
from edgeproof.runtime.proc_status import RssTrail


class WorkerClient:
    """One ``edgeproof.measure.worker`` process."""

    def __init__(self, label: str, timeout: float) -> None:
        self.label = label
        self.timeout = timeout
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "edgeproof.measure.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._rss = RssTrail(self._proc.pid)
        self._paused = False
        self._replies: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._replies.put(line)
        self._replies.put(b"")

    def pause(self) -> None:
        """Stop the worker (SIGSTOP to its process group) while another one is timed: a
        runtime's idle threads (ONNX Runtime spins by default) then take no cycles from it.
        The next ``call`` resumes it (only a pause of ours: a worker stopped by something
        else stays stopped, and a request to it times out as a hang)."""
        self._signal(signal.SIGSTOP)
        self._paused = True

    def _resume(self) -> None:
        if self._paused:
            self._signal(signal.SIGCONT)
            self._paused = False

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def call(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its reply; raises MeasurementError."""
        assert self._proc.stdin is not None
        self._resume()
        try:
            self._proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise MeasurementError(self._death(cmd)) from None
        try:
            line = self._replies.get(timeout=self.timeout)
        except queue.Empty:
            self._rss.stop()
            self.kill()
            raise MeasurementError(
                f"{self.label}: '{cmd}' hung for more than {self.timeout:.0f} s and was killed"
                f" ({self._rss.text()})"
            ) from None
        if not line:
            raise MeasurementError(self._death(cmd))
        reply = json.loads(line)
        if not reply.get("ok"):
            raise MeasurementError(f"{self.label}: {cmd} failed: {reply.get('error')}")
        return reply

    def _death(self, cmd: str) -> str:
        self._rss.stop()
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self._proc.returncode
        if code is not None and code < 0:
            cause = f"killed by signal {signal.Signals(-code).name}"
        else:
            cause = f"exited with code {code}"
        if code == -signal.SIGKILL:
            cause += " (also what the kernel's OOM killer sends)"
        tail = self.stderr_tail()
        return f"{self.label}: measurement process {cause} during '{cmd}'; {self._rss.text()}" + (
            f" (last output: {tail})" if tail else ""
        )

    def stderr_tail(self, limit: int = 300) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - 4096))
        text = self._stderr.read().decode("utf-8", "replace").strip()
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return " | ".join(lines[-3:])[-limit:]

    def kill(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def close(self) -> None:
        """Ask the worker to quit; kill it if it does not."""
        self._rss.stop()
        self._resume()
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(b'{"cmd": "quit"}\n')
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._stderr.close()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
