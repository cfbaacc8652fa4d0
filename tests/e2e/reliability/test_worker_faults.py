"""Faults in the measurement subprocess, during a real measurement of real candidates.

- a candidate's worker that hangs (SIGSTOP: alive, silent) is killed at the request
  deadline; that candidate fails with the reason, the others are measured;
- a candidate's worker that crashes (SIGKILL, or SIGABRT as a native ``abort()`` raises)
  is reported with its signal and its last seconds of RSS; same outcome.

The fault is injected from outside into the first candidate's worker process, found in
/proc as a child of this test process, the moment it exists.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from edgeproof.data.dataset import load_dataset
from edgeproof.measure.harness import measure_target
from edgeproof.records.measurement import TargetMeasurements
from edgeproof.targets.onnxruntime_cpu.target import OnnxRuntimeCpu
from tests.helpers import FAST_MEASURE, TINY_ORT_CONFIG, measure_job_for

WORKER_MODULE = b"edgeproof.measure.worker"


def _workers() -> list[int]:
    """Pids of this process's measurement workers, oldest first."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and WORKER_MODULE in cmdline:
            found.append((int(stat[19]), int(entry.name)))  # (start time, pid)
    return [pid for _, pid in sorted(found)]


def _strike_second_worker(sig: signal.Signals, done: threading.Event) -> None:
    """Send ``sig`` to the second worker (the first candidate's) as soon as it starts."""
    deadline = time.monotonic() + 120
    while not done.is_set() and time.monotonic() < deadline:
        workers = _workers()
        if len(workers) >= 2:
            os.kill(workers[1], sig)
            return
        time.sleep(0.005)


@pytest.mark.parametrize(
    ("sig", "reason"),
    [
        (signal.SIGSTOP, "hung for more than 3 s and was killed"),
        (signal.SIGKILL, "measurement process killed by signal SIGKILL"),
        (signal.SIGABRT, "measurement process killed by signal SIGABRT"),  # a native abort()
    ],
)
def test_a_hung_or_crashed_worker_fails_its_candidate_only(
    sig: signal.Signals,
    reason: str,
    tiny_model: Path,
    tiny_data: dict[str, Path],
    tmp_path: Path,
) -> None:
    target = OnnxRuntimeCpu(TINY_ORT_CONFIG)
    base = target.baseline(tiny_model, tmp_path)
    calibration = load_dataset(tiny_data["calibration"])
    first = target.optimize("qdq", base, calibration, tmp_path / "a")
    first = first.model_copy(update={"name": "victim"})
    second = target.optimize("qdq", base, calibration, tmp_path / "b")
    settings = FAST_MEASURE.model_copy(update={"timeout_seconds": 3.0})

    done = threading.Event()
    striker = threading.Thread(target=_strike_second_worker, args=(sig, done))
    striker.start()
    try:
        got: TargetMeasurements = measure_target(
            base, [first, second], measure_job_for(tiny_data, tmp_path), settings
        )
    finally:
        done.set()
        striker.join()

    assert set(got.raw) == {"fp32", "qdq"}  # the baseline and the other candidate
    assert reason in got.errors["victim"]
    assert "RSS" in got.errors["victim"]  # its last seconds of memory, or that it had none
    assert _workers() == []  # every worker is gone, the stopped one too
