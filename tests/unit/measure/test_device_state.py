"""Device state around each timed block, read from hand-made sysfs trees
(tests/fixtures/sysfs/README.md), and the speed checks it makes inconclusive."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from edgeproof.config import GatesConfig
from edgeproof.gates.checks import decide
from edgeproof.measure.device_state import ClockLog, DeviceState, block_flags
from edgeproof.measure.environment import machine_state
from tests.helpers import ROOT, make_summary

SYSFS = ROOT / "tests" / "fixtures" / "sysfs"
PI_START, PI_END, LAPTOP = SYSFS / "rpi5" / "start", SYSFS / "rpi5" / "end", SYSFS / "x86-laptop"
BASE = make_summary("fp32", baseline=True)


def blocks_between(*roots: Path, tolerance: float = 0.05) -> ClockLog:
    """A clock log of one block between each consecutive pair of snapshot trees."""
    states = [DeviceState(root) for root in roots]
    log = ClockLog(states[0], tolerance)
    for before, after in itertools.pairwise(states):
        log.add("q", before.snapshot(), after.snapshot())
    return log


def test_pi_state_is_read_per_core_with_zones_throttle_and_load() -> None:
    state = DeviceState(PI_START)
    snap = state.snapshot()
    assert snap["khz"] == {f"cpu{i}": 2400000 for i in range(4)}
    assert snap["governor"] == {f"cpu{i}": "ondemand" for i in range(4)}
    assert snap["temp_c"] == {"thermal_zone0": 78.45}
    assert snap["throttled"] == 0 and snap["load_1m"] == 1.12
    assert state.static["max_khz"]["cpu3"] == 2400000
    assert state.static["driver"] == "cpufreq-dt"
    # the fan's "active" trips (50-75 C) are not limits; the critical one is
    assert state.static["trip_c"] == {"thermal_zone0": 110.0}
    assert state.readable == ["cpufreq", "thermal", "throttled", "loadavg"]


def test_a_steady_block_is_not_flagged() -> None:
    log = blocks_between(PI_START, PI_START)
    record = log.record(log.blocks)
    assert record["blocks"] == 1 and record["unsteady"] == 0 and record["reasons"] == []
    assert log.blocks[0]["khz"]["cpu0"] == [2400000, 2400000]


def test_frequency_drop_and_throttle_mid_run_flag_the_block() -> None:
    log = blocks_between(PI_START, PI_END)
    record = log.record(log.blocks)
    assert record["unsteady"] == 1
    flags = log.blocks[0]["flags"]
    assert flags[0] == "cpu0-3 2.4 -> 1.5 GHz"
    assert any(f.startswith("throttled: soft temperature limit") and "0x80008" in f for f in flags)
    assert log.blocks[0]["throttled"] == ["0x0", "0x80008"]
    assert log.blocks[0]["temp_c"]["thermal_zone0"] == [78.45, 85.35]


def test_a_board_that_stays_throttled_flags_every_block() -> None:
    flags = block_flags(
        DeviceState(PI_END).snapshot(), DeviceState(PI_END).snapshot(),
        DeviceState(PI_END).static, 0.05,
    )  # fmt: skip
    assert flags[0] == "cpu0-3 at 1.5 of 2.4 GHz"
    assert any(f.startswith("throttled: soft temperature limit") for f in flags)


def test_a_zone_at_its_trip_point_flags_the_block(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    shutil.copytree(PI_START, hot)
    (hot / "sys/class/thermal/thermal_zone0/temp").write_text("110500\n")
    flags = block_flags(
        DeviceState(PI_START).snapshot(), DeviceState(hot).snapshot(),
        DeviceState(hot).static, 0.05,
    )  # fmt: skip
    assert flags == ["cpu-thermal 110.5 C >= trip 110.0 C"]


def test_laptop_intel_pstate_below_turbo_max_is_flagged_per_measuring_core() -> None:
    state = DeviceState(LAPTOP, cpus=[2])
    assert list(state.cpu_dirs) == ["cpu2"]
    assert state.static["intel_pstate"] == {"status": "active", "no_turbo": "0"}
    assert "trip_c" in state.static and "thermal_zone1" not in state.static["trip_c"]
    snap = state.snapshot()
    assert block_flags(snap, snap, state.static, 0.05) == ["cpu2 at 1.2 of 4.7 GHz"]


def test_nothing_readable_is_recorded_and_never_flagged(tmp_path: Path) -> None:
    state = DeviceState(tmp_path)
    assert state.readable == [] and not state.checkable
    log = ClockLog(state, 0.05)
    log.add("q", state.snapshot(), state.snapshot())
    record = log.record(log.blocks)
    assert record["unsteady"] == 0 and record["readable"] == []
    assert record["note"].startswith(f"nothing readable under {tmp_path}")
    assert log.blocks == [{"worker": "q", "flags": []}]


def test_machine_state_reads_under_the_root() -> None:
    state = machine_state(PI_END)
    assert state["cpu_governor"] == "ondemand" and state["cpu_mhz"] == 1500
    assert state["temperature_c"] == 85.35 and state["loadavg_1m"] == 1.31
    assert state["cpu_flags"] == ["asimd", "asimddp"]
    assert state["device_id"].startswith("serial:")


def test_require_steady_clocks_makes_the_speed_checks_inconclusive() -> None:
    log = blocks_between(PI_START, PI_START, PI_END, PI_END)
    record = log.record(log.blocks)
    assert (record["blocks"], record["unsteady"]) == (3, 2)
    candidate = make_summary("q")
    strict = GatesConfig.model_validate(
        {"latency": {"p90_budget_ms": 5.0, "min_speedup": 1.2, "require_steady_clocks": True}}
    )
    verdict = decide(candidate, BASE, strict, clocks=record)
    speed = {c.name: c for c in verdict.checks if c.name.startswith("latency.")}
    assert {c.status for c in speed.values()} == {"inconclusive"}
    message = speed["latency.min_speedup"].message
    assert message.startswith("speedup 3.40x [3.20, 3.60] >= min 1.20x; not trusted: ")
    assert "2 of 3 blocks at unsteady clocks: cpu0-3 2.4 -> 1.5 GHz, throttled: " in message
    assert "throttled: soft temperature limit" in message
    assert verdict.status == "fail"  # gates.on_inconclusive: fail
    assert any(r.startswith("latency.min_speedup: inconclusive: speedup") for r in verdict.reasons)
    # the other checks are not touched
    assert all(c.status == "pass" for c in verdict.checks if not c.name.startswith("latency."))


@pytest.mark.parametrize("steady_root", [PI_START, None])
def test_without_the_option_or_with_steady_blocks_the_verdict_stands(
    steady_root: Path | None, tmp_path: Path
) -> None:
    gates = GatesConfig.model_validate({"latency": {"min_speedup": 1.2}})
    if steady_root is None:  # unsteady blocks, option off: only a note
        log = blocks_between(PI_START, PI_END)
        verdict = decide(make_summary("q"), BASE, gates, clocks=log.record(log.blocks))
        check = next(c for c in verdict.checks if c.name == "latency.min_speedup")
        assert check.status == "pass" and "(note: 1 of 1 blocks at unsteady clocks" in check.message
    else:  # option on, steady blocks (or nothing readable): pass
        strict = GatesConfig.model_validate(
            {"latency": {"min_speedup": 1.2, "require_steady_clocks": True}}
        )
        for log in (blocks_between(steady_root, steady_root), blocks_between(tmp_path, tmp_path)):
            verdict = decide(make_summary("q"), BASE, strict, clocks=log.record(log.blocks))
            assert verdict.status == "pass"
            check = next(c for c in verdict.checks if c.name == "latency.min_speedup")
            assert "unsteady" not in check.message
