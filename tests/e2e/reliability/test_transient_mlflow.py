"""A tracking server that is away for a moment costs a Prefect task retry, not the run.

The run talks to a real ``mlflow server`` through a port that refuses connections until
the test sees Prefect schedule the retry of ``open-tracking``; then the port forwards to
the server, the retry succeeds and the run finishes, recorded in that server.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from mlflow import MlflowClient

from tests.e2e.reliability.project import ERROR_PREFIX, cli_env, run_command, set_param
from tests.mlflow_server import MlflowServer
from tests.tcp_gate import TcpGate

LOOSE_GATES = {
    "accuracy": {"max_drop_abs": 1.0},
    "fidelity": {"min_top1_agreement": 0.0, "max_kl": None},
    "latency": {"min_speedup": None},
    "on_inconclusive": "warn",
}


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert proc.poll() is None, f"the run ended first:\n{path.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{text!r} never logged"
        time.sleep(0.05)


def test_a_server_away_for_a_moment_is_retried(
    project: Path, prefect_home: Path, scratch: Path, tmp_path: Path
) -> None:
    set_param(project, "gates", LOOSE_GATES)
    server = MlflowServer(tmp_path / "server").start()
    gate = TcpGate(server.port)
    env = cli_env(
        project,
        prefect_home,
        scratch,
        {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{gate.port}",
         "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )  # fmt: skip
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    try:
        with out.open("wb") as out_file, err.open("wb") as err_file:
            proc = subprocess.Popen(
                run_command(), cwd=project, env=env, stdout=out_file, stderr=err_file
            )
            try:
                _wait_for(err, "Retry 1/2 will start", proc, timeout=180)
                gate.open()
                proc.wait(timeout=300)
            finally:
                if proc.poll() is None:
                    proc.kill()
        log = err.read_text(errors="replace")
        assert proc.returncode in (0, 1), log[-3000:]  # pass or a gate: not an error
        assert not [line for line in log.splitlines() if line.startswith(ERROR_PREFIX)]
        assert "Task run 'open-tracking" in log
        client = MlflowClient(tracking_uri=server.uri)
        experiment = client.get_experiment_by_name("tiny")
        (parent,) = client.search_runs(
            [experiment.experiment_id], "tags.`edgeproof.level` = 'pipeline'"
        )
        assert parent.info.status == "FINISHED"
    finally:
        gate.close()
        server.stop()
