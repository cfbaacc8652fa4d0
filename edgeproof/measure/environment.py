"""The state of the machine recorded with every measurement, and the busy-machine guard.

Timings from a busy or throttled machine are not comparable with quiet ones: the load
average, CPU model, count and speed-relevant flags, frequency governor and current
frequency, temperature and Python/platform are recorded beside each measurement so a
surprising number can be explained later. Fields that are not readable on a platform are
left out, never guessed.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import re
from pathlib import Path
from typing import Any

from edgeproof.measure.identity import device_id

_NVP_MODEL = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)")
_NVP_DEFAULT = re.compile(r"<\s*PM_CONFIG\s+DEFAULT=(\d+)")

# CPU flags that change how fast int8 / bf16 / fp16 kernels run
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8",
               "amx_bf16", "fma", "f16c", "asimd", "asimddp", "i8mm", "bf16")  # fmt: skip


def machine_state(root: Path = Path("/")) -> dict[str, Any]:
    """A snapshot of what can change timings, as JSON-ready values.

    ``/proc``, ``/sys`` and ``/etc`` are read under ``root`` (``measure.device_root``; a
    recorded tree in tests); the platform and Python are this interpreter's. ``device_id``
    is ``identity.device_id`` (hashed), where the device has one.
    """
    root = Path(root)
    cpuinfo = _read(str(root / "proc/cpuinfo")) or ""
    state: dict[str, Any] = {
        "cpu_model": _cpu_model(cpuinfo),
        "cpu_count": os.cpu_count(),
        "cpu_flags": _speed_flags(cpuinfo),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
    }
    if root == Path("/"):
        with contextlib.suppress(OSError):
            state["loadavg_1m"] = round(os.getloadavg()[0], 2)
    else:
        load = (_read(str(root / "proc/loadavg")) or "").split()
        with contextlib.suppress(ValueError, IndexError):
            state["loadavg_1m"] = round(float(load[0]), 2)
    cpufreq = root / "sys/devices/system/cpu/cpu0/cpufreq"
    governor = _read(str(cpufreq / "scaling_governor"))
    if governor:
        state["cpu_governor"] = governor
    freq = _read(str(cpufreq / "scaling_cur_freq"))
    if freq and freq.isdigit():
        state["cpu_mhz"] = int(freq) // 1000
    mode = power_mode(root)
    if mode:
        state["power_mode"] = mode
    temp = _read(str(root / "sys/class/thermal/thermal_zone0/temp"))
    if temp and temp.lstrip("-").isdigit():
        state["temperature_c"] = int(temp) / 1000.0
    ident = device_id(root)
    if ident:
        state["device_id"] = ident
    return state


def power_mode(root: Path = Path("/")) -> str | None:
    """The board's power mode, or None where it has none that can be read without root.

    Jetson: the active nvpmodel id from ``/var/lib/nvpmodel/status`` ("pmode:0002"), or
    the ``PM_CONFIG DEFAULT`` of ``/etc/nvpmodel.conf`` before any mode was set, named from
    that file's ``POWER_MODEL`` lines -> ``"nvpmodel:MAXN_SUPER"``. Otherwise the ACPI
    platform profile -> ``"platform_profile:balanced"``. ``root`` is for tests.
    """
    conf = _read(str(root / "etc/nvpmodel.conf"))
    if conf is not None:
        status = _read(str(root / "var/lib/nvpmodel/status")) or ""
        active = re.search(r"pmode:(\d+)", status) or _NVP_DEFAULT.search(conf)
        if active:
            mode = int(active.group(1))
            names = {int(i): n for i, n in _NVP_MODEL.findall(conf)}
            return f"nvpmodel:{names.get(mode, mode)}"
    profile = _read(str(root / "sys/firmware/acpi/platform_profile"))
    return f"platform_profile:{profile}" if profile else None


def busy_reason(state: dict[str, Any], max_load: float | None) -> str | None:
    """Why the machine is too busy to measure (1-minute load above the bound), or None."""
    load = state.get("loadavg_1m")
    if max_load is None or load is None or load <= max_load:
        return None
    return f"machine busy: 1-minute load average {load} > max_load_average {max_load}"


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith(("model name", "Model", "Hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _speed_flags(cpuinfo: str) -> list[str]:
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            present = set(line.split(":", 1)[1].split())
            return [f for f in SPEED_FLAGS if f in present]
    return []


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
