"""Fallback to the baseline, end to end: ``edgeproof run`` on the tiny model with a speed gate
no optimized candidate can pass (``gates.latency.min_speedup: 100``).

- ``registry.fallback_to_baseline`` on (the default): the baseline ``fp32`` passed its own
  gates, so it is registered and becomes ``champion`` with the fallback reason (version
  tag, audit event, summary.md line), its MLflow Model loads and its evidence verifies;
  the run still exits 1 (blocked: no optimization passed). A second unchanged run moves
  nothing: the same version stays champion, no version is added, no alias move recorded.
- off: today's behaviour, nothing is registered.

Real ONNX Runtime, a real sqlite MLflow store and Prefect's ephemeral server, through the
CLI as a user runs it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.e2e.reliability.project import (
    REGISTERED,
    Done,
    build_project,
    cli_env,
    edgeproof,
    set_param,
    store_state,
)
from tests.helpers import BIN

pytestmark = pytest.mark.slow

FALLBACK = "fallback: no optimized candidate passed"
LINE = "Fallback: no optimized candidate passed; the baseline fp32 is champion (v1)"


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prefect-home")


def _project(folder: Path, tiny_model: Path, tiny_data: dict[str, Path], fallback: bool) -> Path:
    """The tiny project, every quality gate loose but a speedup nobody reaches."""
    project = build_project(folder, tiny_model, tiny_data)
    set_param(project, "gates.accuracy.max_drop_abs", None)
    set_param(project, "gates.fidelity.min_top1_agreement", None)
    set_param(project, "gates.fidelity.max_kl", None)
    set_param(project, "gates.latency.min_speedup", 100.0)
    set_param(project, "measure.min_samples", 60)  # enough for the baseline's p90 CI
    set_param(project, "registry.fallback_to_baseline", fallback)
    return project


def _run(project: Path, prefect_home: Path, scratch: Path) -> tuple[Done, dict, str]:
    """One ``edgeproof run``: the process, the newest verdict.json and its summary.md."""
    before = set(project.glob("reports/*/verdict.json"))
    done = edgeproof(project, prefect_home=prefect_home, scratch=scratch, timeout=400)
    (verdict,) = set(project.glob("reports/*/verdict.json")) - before
    summary = (verdict.parent / "summary.md").read_text(encoding="utf-8")
    return done, json.loads(verdict.read_text(encoding="utf-8")), summary


def _version_tags(db: Path, name: str, version: str) -> dict[str, str]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?",
            (name, int(version)),
        ).fetchall()
    finally:
        connection.close()
    return {str(k): str(v) for k, v in rows}


def _history(project: Path, prefect_home: Path, scratch: Path) -> list[dict]:
    shown = _cli(project, prefect_home, scratch, "history", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]


def _cli(project: Path, prefect_home: Path, scratch: Path, *args: str) -> Done:
    done = subprocess.run(
        [str(BIN / "edgeproof"), *args],
        cwd=project,
        env=cli_env(project, prefect_home, scratch),
        capture_output=True,
        text=True,
        timeout=180,
    )
    return Done(done.returncode, done.stdout, done.stderr)


PREDICT = """
import mlflow, numpy as np
model = mlflow.pyfunc.load_model("models:/tiny.onnxruntime-cpu@champion")
out = model.predict({"input": np.zeros((3, 1, 16, 16), np.float32)})
print(sorted((k, tuple(v.shape)) for k, v in out.items()))
"""


def test_nothing_passes_the_baseline_becomes_champion_once_and_stays(
    tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path], prefect_home: Path
) -> None:
    project = _project(tmp_path / "project", tiny_model, tiny_data, fallback=True)
    scratch = tmp_path / "scratch"
    done, verdict, summary = _run(project, prefect_home, scratch)
    assert done.returncode == 1, done.explain()  # blocked: no optimization passed
    assert verdict["status"] == "blocked" and verdict["exit_code"] == 1
    (target,) = verdict["targets"]
    assert (target["status"], target["winner"]) == ("blocked", None), target
    (base,) = [o for o in target["outcomes"] if o["candidate"]["is_baseline"]]
    assert (base["candidate"]["name"], base["verdict"]["status"]) == ("fp32", "pass")
    (promotion,) = verdict["promotions"]
    assert (promotion["version"], promotion["moved"], promotion["champion_after"]) == (
        "1",
        True,
        "1",
    ), promotion
    assert promotion["reason"].startswith(FALLBACK), promotion
    assert LINE in summary, summary
    assert LINE in done.stdout, done.explain()  # the terminal says it too

    db = project / "mlflow.db"
    state = store_state(db)
    assert state.versions == ((REGISTERED, "1"),), state
    assert (REGISTERED, "champion", "1") in state.aliases, state
    tags = _version_tags(db, REGISTERED, "1")
    assert tags["edgeproof.fallback"] == FALLBACK, tags
    assert (tags["edgeproof.candidate"], tags["edgeproof.gates"]) == ("fp32", "pass"), tags
    assert tags["edgeproof.precision"] == "fp32", tags
    (event,) = _history(project, prefect_home, scratch)
    assert (event["action"], event["from_version"], event["to_version"]) == ("promote", None, "1")
    assert event["reason"].startswith(FALLBACK), event

    # the registered baseline is a champion like any other: it loads, predicts, verifies
    predicted = _cli(
        project, prefect_home, scratch, "verify-evidence", f"models:/{REGISTERED}@champion"
    )
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert "model: model/MLmodel sha256" in predicted.stdout
    loaded = subprocess.run(
        [str(BIN / "python"), "-c", PREDICT],
        cwd=project,
        env=cli_env(project, prefect_home, scratch)
        | {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "(3, 10)" in loaded.stdout, loaded.stdout

    # a second, unchanged run: the champion rules hold for a fallback, nothing moves
    again, verdict2, summary2 = _run(project, prefect_home, scratch)
    assert again.returncode == 1, again.explain()
    (promotion2,) = verdict2["promotions"]
    assert (promotion2["version"], promotion2["moved"], promotion2["champion_after"]) == (
        None,
        False,
        "1",
    ), promotion2
    assert promotion2["reason"].startswith(FALLBACK), promotion2
    (target2,) = verdict2["targets"]
    assert target2["champion"]["status"] in ("identical", "kept"), target2["champion"]
    assert "Fallback: no optimized candidate passed; the baseline fp32" in summary2, summary2
    assert LINE not in summary2  # it did not become champion again
    state2 = store_state(db)
    assert state2.versions == ((REGISTERED, "1"),), state2
    assert (REGISTERED, "champion", "1") in state2.aliases, state2
    moves = [e for e in _history(project, prefect_home, scratch) if e["action"] != "kept"]
    assert moves == [event], moves  # no new alias move (a "kept" note at most)


def test_without_the_fallback_nothing_is_registered(
    tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path], prefect_home: Path
) -> None:
    project = _project(tmp_path / "project", tiny_model, tiny_data, fallback=False)
    done, verdict, summary = _run(project, prefect_home, tmp_path / "scratch")
    assert done.returncode == 1, done.explain()
    (promotion,) = verdict["promotions"]
    assert (promotion["version"], promotion["moved"]) == (None, False), promotion
    assert not promotion["reason"].startswith(FALLBACK), promotion
    assert "Fallback:" not in summary, summary
    state = store_state(project / "mlflow.db")
    assert state.versions == () and state.aliases == (), state


def test_a_fallback_is_measured_against_an_optimized_champion_like_a_winner(
    tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path], prefect_home: Path
) -> None:
    """Champion ``dyn`` from a run whose gates let it pass; then the speed gate is tightened
    (another source): the baseline is re-measured beside that champion, and replaces it only
    when not worse beyond noise, as a winner would."""
    project = _project(tmp_path / "project", tiny_model, tiny_data, fallback=True)
    scratch = tmp_path / "scratch"
    set_param(project, "gates.latency.min_speedup", None)
    first, verdict, _ = _run(project, prefect_home, scratch)
    assert first.returncode == 0, first.explain()
    assert verdict["targets"][0]["winner"] == "dyn"

    set_param(project, "gates.latency.min_speedup", 100.0)
    done, verdict, summary = _run(project, prefect_home, scratch)
    assert done.returncode == 1, done.explain()
    (target,) = verdict["targets"]
    versus = target["champion"]
    assert versus is not None and versus["champion_version"] == "1", target
    assert versus["summary"] is not None  # measured here, beside the champion
    assert versus["status"] in ("not-worse", "worse"), versus  # the gates changed: a new source
    (promotion,) = verdict["promotions"]
    assert promotion["reason"].startswith(FALLBACK), promotion
    state = store_state(project / "mlflow.db")
    if versus["status"] == "not-worse":
        assert (promotion["moved"], promotion["version"]) == (True, "2"), promotion
        assert "Fallback: no optimized candidate passed; the baseline fp32 is champion (v2)" in (
            summary
        )
        assert _version_tags(project / "mlflow.db", REGISTERED, "2")["edgeproof.fallback"]
        assert (REGISTERED, "champion", "2") in state.aliases, state
    else:
        assert (promotion["moved"], promotion["version"]) == (False, None), promotion
        assert "the baseline fp32 was not promoted (worse): champion stays v1" in summary
        assert state.versions == ((REGISTERED, "1"),), state
