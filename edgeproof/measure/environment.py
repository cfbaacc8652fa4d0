"""The state of the machine recorded with every measurement.

Timings from a busy or throttled machine are not comparable with quiet ones: the load
average, CPU model and count, frequency governor and Python/platform are recorded beside
each measurement so a surprising number can be explained later. Fields that are not
readable on a platform are left out, never guessed.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any


def machine_state() -> dict[str, Any]:
    """A snapshot of what can change timings, as JSON-ready values."""
    state: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        state["loadavg_1m"] = round(os.getloadavg()[0], 2)
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if governor:
        state["cpu_governor"] = governor
    return state


def _cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
