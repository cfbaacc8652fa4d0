"""The device's clocks, temperatures and throttling around every timed block.

A block timed while the CPU changed frequency, throttled or ran above a thermal trip point
does not measure the model alone. Around every latency block the harness takes a
``snapshot`` of what the kernel exposes, read from a root folder (``/`` on a device, a
recorded tree in ``tests/fixtures/sysfs/`` in tests):

* per core (``sys/devices/system/cpu/cpuN/cpufreq/``): ``scaling_cur_freq`` (each
  snapshot), ``scaling_max_freq``, ``scaling_governor`` and ``scaling_driver`` (once, and
  the governor again per snapshot), plus ``intel_pstate/{status,no_turbo}`` where present;
* thermal zones (``sys/class/thermal/thermal_zoneN/``): ``temp`` (m°C), ``type`` and the
  lowest ``passive`` / ``hot`` / ``critical`` trip point (``active`` trips start fans);
* throttling where the board reports it: the Raspberry Pi firmware's ``get_throttled``
  (its sysfs file, else ``vcgencmd get_throttled`` when reading the real root);
* devfreq devices (``sys/class/devfreq/*``: a Jetson's GPU and memory clocks), recorded
  and never flagged (they scale with their own load, not the CPU's);
* the 1-minute load average (``proc/loadavg``), the load guard's figure.

``block_flags`` says why a block was not at steady clocks: a measuring core's frequency
moved by more than ``tolerance`` x its max between the block's start and end, or sat more
than that below its max, its governor changed, a throttle bit was set (now, or newly since
the start), or a zone reached its trip point. ``clock_record`` sums the blocks up for
``RawMeasurement.environment["clocks"]``, which ``gates.checks`` reads
(``gates.latency.require_steady_clocks``). Where none of this is readable (a VM, a
container) the record says so and no block is ever flagged.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CPU_DIR = "sys/devices/system/cpu"
THERMAL_DIR = "sys/class/thermal"
DEVFREQ_DIR = "sys/class/devfreq"
# the Raspberry Pi firmware driver's sysfs copy of `vcgencmd get_throttled` (Pi kernels)
THROTTLED_GLOBS = (
    "sys/devices/platform/soc/soc:firmware/get_throttled",
    "sys/devices/platform/*/*:firmware/get_throttled",
)
# get_throttled bits: 0-3 now, 16-19 "has occurred since boot"
THROTTLE_BITS = {
    0x1: "under-voltage",
    0x2: "arm frequency capped",
    0x4: "throttled",
    0x8: "soft temperature limit",
}
STICKY_SHIFT = 16
TRIP_TYPES = ("passive", "hot", "critical")  # "active" trip points only start a fan
NOTHING = "nothing readable"
_CPU = re.compile(r"^cpu(\d+)$")
_ZONE = re.compile(r"^thermal_zone(\d+)$")
_TRIP = re.compile(r"^trip_point_(\d+)_type$")
MAX_REASONS = 4  # distinct reasons kept in a record's summary


@dataclass
class DeviceState:
    """What this device exposes under ``root``, found once; ``snapshot()`` reads it now.

    ``cpus``: the measuring cores' numbers (None: every core with cpufreq). ``vcgencmd``:
    the command to ask for the throttled state when no sysfs file has it; ``"auto"`` finds
    it on PATH only when ``root`` is ``/`` (a recorded tree never runs a command).
    """

    root: Path = Path("/")
    cpus: Sequence[int] | None = None
    vcgencmd: str | None = "auto"
    cpu_dirs: dict[str, Path] = field(init=False, default_factory=dict)
    zones: dict[str, Path] = field(init=False, default_factory=dict)
    devfreq: dict[str, Path] = field(init=False, default_factory=dict)
    throttled_file: Path | None = field(init=False, default=None)
    static: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        wanted = None if self.cpus is None else {int(c) for c in self.cpus}
        for entry in _numbered(self.root / CPU_DIR, _CPU):
            number = int(_CPU.match(entry.name).group(1))  # type: ignore[union-attr]
            if (entry / "cpufreq" / "scaling_cur_freq").is_file() and (
                wanted is None or number in wanted
            ):
                self.cpu_dirs[entry.name] = entry / "cpufreq"
        for entry in _numbered(self.root / THERMAL_DIR, _ZONE):
            if _int(entry / "temp") is not None:
                self.zones[entry.name] = entry
        devfreq = self.root / DEVFREQ_DIR
        if devfreq.is_dir():
            for entry in sorted(devfreq.iterdir()):
                if _int(entry / "cur_freq") is not None:
                    self.devfreq[entry.name] = entry
        for pattern in THROTTLED_GLOBS:
            found = sorted(self.root.glob(pattern))
            if found and _hex(_read(found[0])) is not None:
                self.throttled_file = found[0]
                break
        if self.vcgencmd == "auto":
            self.vcgencmd = shutil.which("vcgencmd") if self.root == Path("/") else None
        if self.throttled_file is None and self.vcgencmd and _vcgencmd(self.vcgencmd) is None:
            self.vcgencmd = None
        self.static = self._static()

    @property
    def readable(self) -> list[str]:
        """The sources found: ``cpufreq``, ``thermal``, ``throttled``, ``devfreq``, ``loadavg``."""
        found = {
            "cpufreq": bool(self.cpu_dirs),
            "thermal": bool(self.zones),
            "throttled": self.throttled_file is not None or bool(self.vcgencmd),
            "devfreq": bool(self.devfreq),
            "loadavg": _load(self.root) is not None,
        }
        return [name for name, ok in found.items() if ok]

    @property
    def checkable(self) -> bool:
        """Whether any clock, temperature or throttle state is readable (else never flag)."""
        return bool(self.cpu_dirs or self.zones or self.throttled_file or self.vcgencmd)

    def snapshot(self) -> dict[str, Any]:
        """The state now, JSON-ready; a source that stopped being readable is left out."""
        snap: dict[str, Any] = {}
        khz = {n: v for n, d in self.cpu_dirs.items() if (v := _int(d / "scaling_cur_freq"))}
        if khz:
            snap["khz"] = khz
        governors = {n: g for n, d in self.cpu_dirs.items() if (g := _read(d / "scaling_governor"))}
        if governors:
            snap["governor"] = governors
        temps = {}
        for name, zone in self.zones.items():
            milli = _int(zone / "temp")
            if milli is not None:
                temps[name] = milli / 1000.0
        if temps:
            snap["temp_c"] = temps
        throttled = self._throttled()
        if throttled is not None:
            snap["throttled"] = throttled
        hz = {n: v for n, d in self.devfreq.items() if (v := _int(d / "cur_freq")) is not None}
        if hz:
            snap["devfreq_hz"] = hz
        load = _load(self.root)
        if load is not None:
            snap["load_1m"] = load
        return snap

    def _throttled(self) -> int | None:
        if self.throttled_file is not None:
            return _hex(_read(self.throttled_file))
        if self.vcgencmd:
            return _vcgencmd(self.vcgencmd)
        return None

    def _static(self) -> dict[str, Any]:
        """What does not change between blocks: max frequencies, driver, trip points."""
        static: dict[str, Any] = {}
        max_khz = {n: v for n, d in self.cpu_dirs.items() if (v := _int(d / "scaling_max_freq"))}
        if max_khz:
            static["max_khz"] = max_khz
        drivers = sorted({v for d in self.cpu_dirs.values() if (v := _read(d / "scaling_driver"))})
        if drivers:
            static["driver"] = ", ".join(drivers)
        pstate = self.root / CPU_DIR / "intel_pstate"
        if pstate.is_dir():
            static["intel_pstate"] = {
                k: v for k in ("status", "no_turbo") if (v := _read(pstate / k)) is not None
            }
        zone_types = {n: t for n, z in self.zones.items() if (t := _read(z / "type"))}
        if zone_types:
            static["zone_type"] = zone_types
        trips = {n: t for n, z in self.zones.items() if (t := _trip_c(z)) is not None}
        if trips:
            static["trip_c"] = trips
        devfreq_max = {
            n: v for n, d in self.devfreq.items() if (v := _int(d / "max_freq")) is not None
        }
        if devfreq_max:
            static["devfreq_max_hz"] = devfreq_max
        return static


def block_flags(
    start: dict[str, Any], end: dict[str, Any], static: dict[str, Any], tolerance: float
) -> list[str]:
    """Why a block between two snapshots was not at steady clocks ([] when it was, or when
    nothing was readable). See the module doc for the rules."""
    max_khz = static.get("max_khz", {})
    begin, finish = start.get("khz", {}), end.get("khz", {})
    cores: dict[str, list[int]] = {}  # the same finding on several cores: one flag
    for cpu in sorted(set(begin) & set(finish), key=_cpu_key):
        a, b = begin[cpu], finish[cpu]
        top = max_khz.get(cpu) or max(a, b)
        if abs(b - a) > tolerance * top:
            cores.setdefault(f"{_ghz(a)} -> {_ghz(b)} GHz", []).append(_cpu_key(cpu))
        elif min(a, b) < (1.0 - tolerance) * top:
            cores.setdefault(f"at {_ghz(min(a, b))} of {_ghz(top)} GHz", []).append(_cpu_key(cpu))
    flags = [f"{_cpu_list(numbers)} {what}" for what, numbers in cores.items()]
    gov_a, gov_b = start.get("governor", {}), end.get("governor", {})
    for cpu in sorted(set(gov_a) & set(gov_b), key=_cpu_key):
        if gov_a[cpu] != gov_b[cpu]:
            flags.append(f"{cpu} governor {gov_a[cpu]} -> {gov_b[cpu]}")
    flags.extend(_throttle_flags(start.get("throttled"), end.get("throttled")))
    trips, types = static.get("trip_c", {}), static.get("zone_type", {})
    for zone, trip in trips.items():
        hottest = max(
            (s["temp_c"][zone] for s in (start, end) if zone in s.get("temp_c", {})),
            default=None,
        )
        if hottest is not None and hottest >= trip:
            flags.append(f"{types.get(zone, zone)} {hottest:.1f} C >= trip {trip:.1f} C")
    return flags


def throttle_reasons(value: int) -> list[str]:
    """The names of the ``get_throttled`` bits set now (bits 0-3)."""
    return [name for bit, name in THROTTLE_BITS.items() if value & bit]


def _throttle_flags(start: int | None, end: int | None) -> list[str]:
    if start is None and end is None:
        return []
    now = (start or 0) | (end or 0)
    names = throttle_reasons(now)
    newly = ((end or 0) & ~(start or 0)) >> STICKY_SHIFT & 0xF if start is not None else 0
    names += [f"{n} during the block" for n in throttle_reasons(newly) if n not in names]
    value = end if end is not None else start
    return [f"throttled: {', '.join(names)} (get_throttled {value:#x})"] if names else []


@dataclass
class ClockLog:
    """Every timed block of one measurement run: who was timed, its snapshots, its flags."""

    state: DeviceState
    tolerance: float
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> dict[str, Any]:
        return self.state.snapshot()

    def add(self, worker: str, start: dict[str, Any], end: dict[str, Any]) -> None:
        """Record one block of ``worker`` between two snapshots."""
        flags = block_flags(start, end, self.state.static, self.tolerance)
        entry: dict[str, Any] = {"worker": worker}
        for key in ("khz", "temp_c", "devfreq_hz"):
            if key in start or key in end:
                a, b = start.get(key, {}), end.get(key, {})
                entry[key] = {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b))}
        if "governor" in end:
            entry["governor"] = sorted(set(end["governor"].values()))
        if "throttled" in start or "throttled" in end:
            entry["throttled"] = [_hexstr(start.get("throttled")), _hexstr(end.get("throttled"))]
        if "load_1m" in start:
            entry["load_1m"] = start["load_1m"]
        entry["flags"] = flags if self.state.checkable else []
        self.blocks.append(entry)

    def record(self, blocks: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """``clock_record`` of ``blocks`` (a slice of ``self.blocks``)."""
        return clock_record(self.state, list(blocks), self.tolerance)


def clock_record(
    state: DeviceState, blocks: list[dict[str, Any]], tolerance: float
) -> dict[str, Any]:
    """The ``environment["clocks"]`` of a measurement: what was readable, the static state,
    ``blocks`` (count), ``unsteady`` (blocks flagged), ``reasons`` (the first few distinct
    ones, for a check's message) and ``per_block``."""
    unsteady = [b for b in blocks if b.get("flags")]
    flags = [flag for b in unsteady for flag in b["flags"]]
    reasons: list[str] = []
    kinds: set[str] = set()
    for flag in flags:  # first the first flag of each kind, then more of them
        if _kind(flag) not in kinds:
            kinds.add(_kind(flag))
            reasons.append(flag)
    for flag in flags:
        if len(reasons) >= MAX_REASONS:
            break
        if flag not in reasons:
            reasons.append(flag)
    reasons = reasons[:MAX_REASONS]
    record: dict[str, Any] = {
        "root": str(state.root),
        "readable": state.readable,
        "cpus": list(state.cpu_dirs),
        "tolerance": tolerance,
        **state.static,
        "blocks": len(blocks),
        "unsteady": len(unsteady),
        "reasons": reasons,
        "per_block": blocks,
    }
    if not state.checkable:
        record["note"] = (
            f"{NOTHING} under {state.root}: no cpufreq, thermal zone or throttle state; "
            "clocks not checked"
        )
    return record


def _numbered(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if pattern.match(p.name)]
    return sorted(found, key=lambda p: int(pattern.match(p.name).group(1)))  # type: ignore[union-attr]


def _trip_c(zone: Path) -> float | None:
    """The lowest passive / hot / critical trip point in °C (0 or below: unset)."""
    temps = []
    for entry in zone.glob("trip_point_*_type"):
        match = _TRIP.match(entry.name)
        if match and _read(entry) in TRIP_TYPES:
            milli = _int(zone / f"trip_point_{match.group(1)}_temp")
            if milli is not None and milli > 0:
                temps.append(milli / 1000.0)
    return min(temps) if temps else None


def _load(root: Path) -> float | None:
    text = _read(root / "proc" / "loadavg")
    if not text:
        return None
    with contextlib.suppress(ValueError, IndexError):
        return round(float(text.split()[0]), 2)
    return None


def _vcgencmd(command: str) -> int | None:
    """``vcgencmd get_throttled`` -> its value ("throttled=0x50005"), or None."""
    try:
        out = subprocess.run(
            [command, "get_throttled"], capture_output=True, text=True, timeout=2, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return _hex(out.split("=", 1)[-1]) if "throttled=" in out else None


def _hex(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text.strip().strip("\x00"), 16)
    except ValueError:
        return None


def _hexstr(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def _int(path: Path) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _ghz(khz: float) -> str:
    return f"{khz / 1e6:.1f}"


def _kind(flag: str) -> str:
    """A flag's kind: throttled, governor, frequency or temperature."""
    if flag.startswith("throttled"):
        return "throttled"
    if " governor " in flag:
        return "governor"
    return "frequency" if flag.startswith("cpu") and "GHz" in flag else "temperature"


def _cpu_list(numbers: list[int]) -> str:
    """[0, 1, 2, 3] -> "cpu0-3", [0, 2] -> "cpu0,2", [2] -> "cpu2"."""
    if len(numbers) > 1 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"cpu{numbers[0]}-{numbers[-1]}"
    return "cpu" + ",".join(str(n) for n in numbers)


def _cpu_key(name: str) -> int:
    match = _CPU.match(name)
    return int(match.group(1)) if match else 0
