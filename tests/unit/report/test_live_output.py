"""Nothing writes under the live view: stdout and stderr (file descriptors 1 and 2, so native
code and subprocesses too) go to the run's console log while the live table shows."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from edgeproof.report.live import RUN_LOGGERS, follow_run

ORT = "onnxruntime-cpu"


def _read_all(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("fails", [False, True])
def test_output_goes_to_the_log_and_the_table_to_the_terminal(
    tmp_path: Path, fails: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as in a real run, Python's streams write to file descriptors 1 and 2 (not pytest's)
    monkeypatch.setattr(sys, "stdout", open(1, "w", closefd=False))  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", open(2, "w", closefd=False))  # noqa: SIM115
    master, slave = os.openpty()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    console = Console(file=terminal, force_terminal=True, width=100, height=20)
    log = tmp_path / "run.log"
    logger = logging.getLogger(RUN_LOGGERS[1])
    logger.setLevel(logging.INFO)
    before = (os.fstat(1).st_ino, os.fstat(2).st_ino)
    try:
        with follow_run(console, {ORT: 1}, console_log=log):
            logger.info(f"{ORT}: optimizing static-qdq")
            print("a python print")
            sys.stderr.write("a python stderr line\n")
            os.write(1, b"native fd 1\n")
            os.write(2, b"native fd 2\n")
            subprocess.run([sys.executable, "-c", "print('from a subprocess')"], check=True)
            if fails:
                raise RuntimeError("boom")
    except RuntimeError:
        assert fails
    finally:
        terminal.flush()
    assert (os.fstat(1).st_ino, os.fstat(2).st_ino) == before  # restored
    screen = _read_all(master)
    os.close(master)
    terminal.close()
    written = log.read_text(encoding="utf-8")
    for line in (
        "a python print",
        "a python stderr line",
        "native fd 1",
        "native fd 2",
        "from a subprocess",
    ):
        assert line in written and line not in screen, line
    assert "optimizing" in screen or "static-qdq" in screen
    assert screen.count("edgeproof run ·") >= 1
