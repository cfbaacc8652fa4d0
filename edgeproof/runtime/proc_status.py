"""Memory of a process as Linux reports it in ``/proc/<pid>/status``, and a rolling trail.

The worker reads its own peak (``VmHWM``); the parent samples a worker's ``VmRSS`` while it
runs, so that when the worker dies (a signal, the OOM killer, an abort in a native
library) or hangs, the failure reason carries its last seconds of memory: a climb to a
limit tells an OOM kill from a crash at a flat RSS.
"""

from __future__ import annotations

import collections
import threading


def process_status_mb(pid: int | str, field: str) -> float | None:
    """``field`` (VmRSS, VmHWM, ...) of ``/proc/<pid>/status`` in MB, or None if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None  # e.g. a zombie: no memory lines any more


class RssTrail:
    """A process's RSS every ``interval`` seconds, the last ``seconds`` of it kept."""

    def __init__(self, pid: int, interval: float = 0.25, seconds: float = 5.0) -> None:
        self.pid, self.interval, self.seconds = pid, interval, seconds
        self._samples: collections.deque[float] = collections.deque(
            maxlen=max(1, round(seconds / interval))
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            rss = process_status_mb(self.pid, "VmRSS")
            if rss is None:
                return
            self._samples.append(rss)
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def text(self, shown: int = 10) -> str:
        """``RSS over its last 5 s: 101, 140, 950 MB`` (at most ``shown`` values)."""
        samples = list(self._samples)
        if not samples:
            return f"RSS not sampled (gone within {self.interval:g} s)"
        step = max(1, -(-len(samples) // shown))
        picked = samples[::step]
        if (len(samples) - 1) % step:
            picked.append(samples[-1])  # always end on the last value seen
        span = min(self.seconds, len(samples) * self.interval)
        return f"RSS over its last {span:g} s: {', '.join(f'{x:.0f}' for x in picked)} MB"
