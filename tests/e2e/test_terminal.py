"""`edgeproof run` in a real pseudo-terminal: what a person reads at the end.

The run is driven in a pty sized 100 and 160 columns (TIOCSWINSZ) and its output fed to a
VT100 emulator (pyte); asserted on the final screen: the live view's header once (nothing
wrote under it, though the team's metric prints to stdout and file descriptor 2 during
the run), the verdict table whole with no cut verdict, and the report's path.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import numpy as np
import pyte
import pytest
import yaml

from edgeproof.report.terminal import VERDICTS
from tests.helpers import BIN, make_tiny_cnn, tool_env, write_npz

pytestmark = pytest.mark.slow

ROWS = 200  # tall enough that nothing scrolls off: the final screen is the whole session
NOISE = "NOISY-RUNTIME-LINE"
METRIC_FILE = f'''
import os

import numpy as np

def top3_hit(outputs, baseline_outputs, labels):
    """1 when the label is among the three highest logits; talks like a runtime."""
    print("{NOISE} on stdout", flush=True)
    os.write(2, b"{NOISE} on fd 2\\n")
    (logits,) = outputs.values()
    top3 = np.argsort(-logits, axis=1)[:, :3]
    return (top3 == labels[:, None]).any(axis=1).astype(float)
'''
PARAMS = {
    "model": {
        "name": "tiny",
        "path": "model.onnx",
        "metric": {"function": "team_metric.py:top3_hit", "name": "top3"},
    },
    "data": {
        "eval": "data/eval.npz",
        "calibration": "data/calibration.npz",
        "checks": {"min_eval_rows": 100},
    },
    "gates": {"latency": {"min_speedup": 0.1}},
    "measure": {"min_samples": 60, "max_samples": 80, "max_seconds": 3, "eval_batch": 16},
    "targets": {
        "onnxruntime-cpu": {
            "recipes": [
                {"name": "static-int8", "method": "static"},
                {"name": "dynamic-int8", "method": "dynamic"},
            ]
        }
    },
}


def _project(folder: Path) -> Path:
    make_tiny_cnn(folder / "model.onnx", size=16)
    rng = np.random.default_rng(0)
    x = rng.random((240, 1, 16, 16), dtype=np.float32)
    labels = np.arange(240) % 10
    write_npz(folder / "data/eval.npz", input=x[:160], labels=labels[:160])
    write_npz(folder / "data/calibration.npz", input=x[160:], labels=labels[160:])
    (folder / "team_metric.py").write_text(METRIC_FILE, encoding="utf-8")
    (folder / "params.yaml").write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    return folder


def run_in_pty(args: list[str], cwd: Path, columns: int, timeout: float = 600) -> tuple[int, str]:
    """Run ``args`` on a pseudo-terminal ``columns`` wide; (exit code, final screen)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, columns, 0, 0))
    env = {k: v for k, v in tool_env(cwd).items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    screen = pyte.Screen(columns, ROWS)
    stream = pyte.ByteStream(screen)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed its side: EIO on Linux
                    break
                if not data:
                    break
                stream.feed(data)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return code, "\n".join(line.rstrip() for line in screen.display).rstrip()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _project(tmp_path_factory.mktemp("terminal"))


@pytest.mark.parametrize("columns", [100, 160])
def test_the_final_screen_holds_the_verdict_whole(project: Path, columns: int) -> None:
    edgeproof = str(BIN / "edgeproof")
    code, screen = run_in_pty(
        [edgeproof, "run", "--params", "params.yaml", "--report-dir", "reports"], project, columns
    )
    assert code in (0, 1), screen
    lines = screen.splitlines()
    assert sum(line.startswith("edgeproof run ·") for line in lines) == 1, screen
    assert NOISE not in screen, screen  # went to the run's log, not under the live view
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["candidate", "verdict"])
    rows = {}
    for line in lines[header + 1 :]:
        if not line.startswith(("fp32", "static-int8", "dynamic-int8")):
            break
        rows[line.split()[0]] = line
    assert set(rows) == {"fp32", "static-int8", "dynamic-int8"}, screen
    for name, line in rows.items():
        assert "…" not in line, line
        assert any(verdict in line for verdict in VERDICTS.values()), line
        assert "x [" in line or name == "fp32", line  # the speedup with its CI
    assert "size MB" in lines[header]
    assert "…" not in screen.split("edgeproof quality gate:")[-1]  # the summary: no cut cell
    folder = max((project / "reports").iterdir(), key=lambda p: p.stat().st_mtime)
    assert f"Full report: reports/{folder.name}/summary.md" in screen, screen
    assert f"edgeproof report {folder.name}" in screen
    log = folder / "run.log"
    assert f"Prefect): reports/{folder.name}/run.log" in screen, screen
    assert NOISE in log.read_text(encoding="utf-8")
    assert (folder / "summary.md").is_file()
    print(screen)  # shown with -s
