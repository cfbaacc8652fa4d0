"""One failure never sinks the run: a fault at each step of a candidate's life.

Two targets gate the tiny model in one ``edgeproof run``: ``onnxruntime-cpu`` (healthy) and
``faulty-ort`` (``faulty_target.py``: ONNX Runtime with a fault injected into its
candidate where the case says). Cases, in the catalogue's words:

- candidate-optimize-fails   the optimizer raises: an error candidate with the reason (no
                             model file: tracking, MLflow Models and evidence take it)
- candidate-load-fails       the candidate does not load in its measurement worker
- candidate-run-fails        its session raises on every call
- candidate-outputs-maps     it answers with maps (ZipMap), not tensors: scoring fails
- target-internal-error      a bug (KeyError) while building the baseline: that target
                             errs, exit 2, one line naming it

In every case the healthy target's verdict and its registered version stand, and no MLflow
run is left RUNNING.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.reliability.project import Done, cli_env, set_param, store_state

ROOT = Path(__file__).resolve().parents[3]
LAUNCH = "from tests.e2e.reliability.faulty_target import main; main()"

CANDIDATE_FAULTS = {
    "optimize": r"optimization failed: injected fault: the optimizer crashed",
    "open_session": r"load failed: RuntimeError: injected fault: the candidate does not load",
    "run": r"injected fault: the session failed to run",
    "outputs": r"outputs failed: TypeError: .*not 'dict'",
}


def _run(project: Path, prefect_home: Path, scratch: Path) -> Done:
    env = cli_env(project, prefect_home, scratch)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "run", "--params", "params.yaml"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    return Done(done.returncode, done.stdout, done.stderr)


def _setup(project: Path, fault: str) -> None:
    """The faulty target beside the healthy one; the gates loose enough (no speed, accuracy
    or agreement limit) that the healthy one's ``dyn`` passes and is promoted."""
    set_param(project, "gates.latency.min_speedup", None)
    set_param(project, "gates.accuracy.max_drop_abs", None)
    set_param(project, "gates.fidelity.min_top1_agreement", None)
    set_param(project, "gates.fidelity.max_kl", None)
    # a baseline measured alone (its only candidate failed) gets min_samples: enough for
    # the 99% CI of its p90
    set_param(project, "measure.min_samples", 60)
    recipes = [{"name": "dyn", "method": "dynamic"}]
    set_param(project, "targets.faulty-ort", {"fail_at": fault, "recipes": recipes})


def _verdict(project: Path) -> dict:
    (found,) = project.glob("reports/**/verdict.json")
    return json.loads(found.read_text(encoding="utf-8"))


def _others_stand(project: Path) -> dict:
    """The healthy target passed or was blocked on its own, its winner registered; no run
    left RUNNING. The faulty target's outcome."""
    verdict = _verdict(project)
    targets = {t["target"]: t for t in verdict["targets"]}
    healthy = targets["onnxruntime-cpu"]
    assert healthy["status"] in ("pass", "blocked"), healthy
    state = store_state(project / "mlflow.db")
    assert ("tiny.onnxruntime-cpu", "1") in state.versions, state
    assert not [run for run in state.runs if run[1] == "RUNNING"], state.runs
    return targets["faulty-ort"]


@pytest.mark.parametrize("fault", list(CANDIDATE_FAULTS))
def test_a_failed_candidate_is_an_error_candidate_and_the_run_goes_on(
    fault: str, project: Path, prefect_home: Path, scratch: Path
) -> None:
    _setup(project, fault)
    done = _run(project, prefect_home, scratch)
    assert done.returncode == 1, done.explain()  # faulty-ort: no candidate passed
    assert "Traceback" not in done.stdout + done.stderr, done.explain()
    faulty = _others_stand(project)
    assert (faulty["status"], faulty["reason"]) == ("blocked", "no candidate passed every gate")
    (dyn,) = [o for o in faulty["outcomes"] if o["candidate"]["name"] == "dyn"]
    assert dyn["verdict"]["status"] == "error", dyn
    assert any(
        re.search(CANDIDATE_FAULTS[fault], reason) for reason in dyn["verdict"]["reasons"]
    ), dyn["verdict"]
    state = store_state(project / "mlflow.db")
    assert ("faulty-ort/dyn", "FAILED") in state.runs, state.runs


def test_an_internal_error_fails_its_target_only(
    project: Path, prefect_home: Path, scratch: Path
) -> None:
    _setup(project, "baseline")
    done = _run(project, prefect_home, scratch)
    assert done.returncode == 2, done.explain()
    (line,) = done.error_lines()  # one line; Prefect's log keeps the bug's traceback
    assert re.search(r"target faulty-ort: error: internal error: KeyError: .injected bug", line)
    faulty = _others_stand(project)
    assert faulty["status"] == "error", faulty


def test_a_target_with_no_recipes_says_only_the_baseline_was_built(
    project: Path, prefect_home: Path, scratch: Path
) -> None:
    set_param(project, "targets.onnxruntime-cpu", {"enabled": True, "recipes": []})
    set_param(project, "measure.min_samples", 60)
    done = _run(project, prefect_home, scratch)
    assert done.returncode == 1, done.explain()
    (target,) = _verdict(project)["targets"]
    expected = "only the baseline was built: add recipes (targets.onnxruntime-cpu.recipes)"
    assert target["reason"] == expected, target
    (summary,) = project.glob("reports/**/summary.md")
    text = summary.read_text(encoding="utf-8")
    assert expected in text and "no candidate passed every gate" not in text, text
