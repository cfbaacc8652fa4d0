"""The installed ``edgeproof`` command ends with ``os._exit`` after the exit handlers: its
exit status and everything it wrote through a pipe must survive that."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgeproof.cli.console import exit_status
from tests.helpers import BIN, tool_env


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (1, 1), (2, 2), ("bye", 1)])
def test_exit_status_is_pythons(code: object, status: int) -> None:
    assert exit_status(code) == status


def test_output_through_a_pipe_and_the_exit_status_survive(tmp_path: Path) -> None:
    env = tool_env(tmp_path)
    shown = subprocess.run(
        [str(BIN / "edgeproof"), "run", "--help"], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert "Optimize, measure and gate the model" in shown.stdout
    assert "--params" in shown.stdout and shown.stdout.rstrip().endswith("╯")

    missing = tmp_path / "missing.yaml"
    refused = subprocess.run(
        [str(BIN / "edgeproof"), "run", "--params", str(missing)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"edgeproof: error: {missing}: params file not found"
    ]
