"""The framework matrix read back from a real sqlite MLflow store seeded with candidate runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.gates.framework_matrix import Matrix
from edgeproof.report.matrix import margin_text, matrix_heatmap, matrix_markdown
from edgeproof.tracking.matrix_runs import collect_matrix

ORT, OV, OLIVE = "onnxruntime-cpu", "openvino-cpu", "olive"
DEV_A, DEV_B, DEV_C = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3"
NAMES = {DEV_A: "Xeon A", DEV_B: "Cortex B", DEV_C: "Pi C"}
T0 = 1_700_000_000_000  # ms; each run starts a minute after the previous one


def _seed(client, experiment_id: str, runs: list[dict]) -> None:
    from mlflow.entities import Metric, RunTag

    for minute, spec in enumerate(runs):
        tags = {
            "edgeproof.level": spec.get("level", "candidate"),
            "edgeproof.target": spec["target"],
            "edgeproof.candidate": spec["candidate"],
            "edgeproof.verdict": spec.get("verdict", "pass"),
            "edgeproof.baseline": str(spec.get("baseline", False)).lower(),
            "edgeproof.winner": "false",
        }
        if spec.get("device"):
            tags["edgeproof.device"] = spec["device"]
            tags["edgeproof.device_name"] = NAMES[spec["device"]]
        start = T0 + 60_000 * spec.get("minute", minute)
        run = client.create_run(
            experiment_id, start_time=start, tags=tags, run_name=spec["candidate"]
        )
        metrics = []
        if "p50" in spec:
            p50, low, high = spec["p50"]
            metrics = [
                Metric(k, v, start, 0)
                for k, v in {
                    "latency_p50_ms": p50,
                    "latency_p50_ms_low": low,
                    "latency_p50_ms_high": high,
                    "speedup": 10.0 / p50,
                    "accuracy": 0.97,
                }.items()
            ]
        client.log_batch(run.info.run_id, metrics=metrics, tags=[RunTag("seeded", "yes")])
        client.set_terminated(run.info.run_id, end_time=start + 1000)


def _run(device: str | None, target: str, candidate: str, p50=None, **extra) -> dict:
    spec = {"device": device, "target": target, "candidate": candidate, **extra}
    return spec if p50 is None else {**spec, "p50": p50}


FAIL, BASE = {"verdict": "fail"}, {"baseline": True}
RUNS = [
    # device A: openvino wins clearly (4.0 [3.9, 4.1]) over olive (4.72 [4.6, 4.9])
    _run(DEV_A, ORT, "fp32", (10.0, 9.5, 10.5), **BASE),
    # ort/int8: the older, faster run is replaced by the newer one (seeded out of order)
    _run(DEV_A, ORT, "int8", (5.0, 4.8, 5.2), minute=30),
    _run(DEV_A, ORT, "int8", (2.0, 1.9, 2.1), minute=10),
    _run(DEV_A, OV, "nncf-int8", (4.0, 3.9, 4.1)),
    _run(DEV_A, OV, "broken", (1.0, 0.9, 1.1), **FAIL),  # fastest of all, but failed
    _run(DEV_A, OLIVE, "int8", (4.72, 4.6, 4.9)),
    # device B: onnxruntime wins within noise; the baseline is faster still; no olive run
    _run(DEV_B, ORT, "int8", (3.0, 2.8, 3.3)),
    _run(DEV_B, OV, "nncf-int8", (3.06, 2.9, 3.2)),
    _run(DEV_B, ORT, "fp32", (0.5, 0.45, 0.55), **BASE),
    # device C: nothing passes
    _run(DEV_C, ORT, "int8", (8.0, 7.5, 8.5), **FAIL),
    # ignored: no device tag; no latency metric; a target-level run
    _run(None, ORT, "int8", (0.1, 0.09, 0.11)),
    _run(DEV_A, OV, "errored", verdict="error"),
    _run(DEV_A, OV, "x", (0.2, 0.1, 0.3), level="target"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    mlflow_client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow_client.create_experiment(
        "digits", artifact_location=(folder / "art").as_uri()
    )
    _seed(mlflow_client, experiment, RUNS)
    other = mlflow_client.create_experiment("other", artifact_location=(folder / "o").as_uri())
    _seed(mlflow_client, other, [_run(DEV_A, OLIVE, "int8", (0.3, 0.2, 0.4))])
    return mlflow_client


@pytest.fixture(scope="module")
def matrix(client) -> Matrix:
    return collect_matrix(client, "digits", page_size=4)  # pages through 4 runs at a time


def test_winners_margins_and_noise_per_device(matrix: Matrix) -> None:
    assert matrix.model == "digits"
    assert [r.device for r in matrix.devices] == [DEV_B, DEV_C, DEV_A]  # by device name
    b, c, a = matrix.devices
    assert a.device_name == "Xeon A" and a.runs == 6  # both int8 runs read
    assert len(a.cells) == 5  # one per candidate, the newest
    int8 = next(x for x in a.cells if x.label == f"{ORT}/int8")
    assert int8.p50_ms == 5.0 and int8.p50_low == 4.8 and int8.speedup == 2.0
    assert int8.when.timestamp() * 1000 == T0 + 30 * 60_000
    assert a.winner is not None and a.winner.label == f"{OV}/nncf-int8"  # not fail, not stale
    assert a.runner_up is not None and a.runner_up.label == f"{OLIVE}/int8"  # not OV's own
    assert a.margin == pytest.approx(1.18) and a.clear
    assert a.best(ORT) is int8 and a.best(OLIVE) is a.runner_up

    assert b.winner is not None and b.winner.label == f"{ORT}/int8"  # not the 0.5 ms baseline
    assert b.runner_up is not None and b.runner_up.label == f"{OV}/nncf-int8"
    assert b.margin == pytest.approx(1.02) and not b.clear
    assert b.best(OLIVE) is None

    assert c.winner is None and c.runner_up is None and c.margin is None and not c.clear
    assert len(c.cells) == 1 and c.cells[0].verdict == "fail"
    assert margin_text(c) == "—"


def test_markdown_table(matrix: Matrix) -> None:
    text = matrix_markdown(matrix)
    lines = text.splitlines()
    assert lines[0] == "### Framework matrix: `digits`"
    assert f"| device | {OLIVE} | {ORT} | {OV} | winner | margin |" in lines
    row_a = next(line for line in lines if DEV_A in line)
    assert row_a == (
        f"| Xeon A `{DEV_A}` | int8 4.72 ms | int8 5.00 ms | **nncf-int8 4.00 ms** "
        f"| {OV}/nncf-int8 | 1.18x over {OLIVE}/int8, CIs apart |"
    )
    row_b = next(line for line in lines if DEV_B in line)
    assert row_b == (
        f"| Cortex B `{DEV_B}` | — | **int8 3.00 ms** | nncf-int8 3.06 ms "
        f"| {ORT}/int8 | 1.02x over {OV}/nncf-int8, within noise |"
    )
    row_c = next(line for line in lines if DEV_C in line)
    assert row_c == f"| Pi C `{DEV_C}` | — | no pass | — | none passed | — |"
    assert "broken" not in text and "fp32" not in text
    assert "latest run" in text


def test_heatmap_png(matrix: Matrix, tmp_path: Path) -> None:
    path = matrix_heatmap(matrix, tmp_path / "plots" / "matrix.png")
    assert path == tmp_path / "plots" / "matrix.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_without_runs(client) -> None:
    empty = collect_matrix(client, "never-logged")
    assert empty == Matrix("never-logged", ())
    text = matrix_markdown(empty)
    assert len(text.strip().splitlines()) == 1 and "`never-logged`" in text
    assert matrix_heatmap(empty, Path("unused.png")) is None


def test_heatmap_without_any_passing_cell(matrix: Matrix, tmp_path: Path) -> None:
    only_failing = Matrix("digits", tuple(r for r in matrix.devices if r.winner is None))
    assert len(only_failing.devices) == 1
    path = matrix_heatmap(only_failing, tmp_path / "failing.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert "none passed" in matrix_markdown(only_failing)
