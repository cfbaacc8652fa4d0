"""What a model really returns, refused by ``edgeproof run`` before anything is written when
neither params nor the observation at resolve says how to gate it.

Same checks as the bad-input catalogue (``test_bad_inputs.py``): exit 2, exactly one
``edgeproof: error:`` line naming the key to set, no traceback, every file of the project
(an MLflow store with a champion included) unchanged, nothing registered, no temporary
folder left. And the same project gated once params say it.

  fixed-batch-width-ambiguous   model.inputs.x.item_axis: input 'x' (1, 1, 8, ?) may hold
                                its items on axis 0 (batch fixed at 1) or on axis 3
  declared-output-contradicted  a classifier's class output declared [1, seqlen] returns
                                (T, 1, classes): model.outputs names the class output
  label-output-first            model.outputs: the first output 'output_label' is int64 labels
  output-not-in-model           model.outputs: 'scores' is not an output of the model
  item-axis-on-a-fixed-dim      model.inputs.input.item_axis: axis 2 ... is fixed at 16
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.e2e.reliability.project import (
    REGISTERED,
    assert_refused,
    edgeproof,
    leftovers,
    set_param,
    snapshot,
    store_state,
)
from tests.e2e.reliability.test_bad_inputs import Case, both, npz, param
from tests.unit.engine.test_observed_outputs import WIDTH, label_first, recognizer


def ocr_model(project: Path) -> None:
    recognizer(project / "model.onnx")


def label_first_model(project: Path) -> None:
    label_first(project / "model.onnx")


def lines(n: int, seed: int = 3) -> dict[str, np.ndarray]:
    """n text-line images 1 x 8 x WIDTH (labels: one class id each, for a classifier)."""
    x = np.random.default_rng(seed).random((n, 1, 8, WIDTH), dtype=np.float32)
    return {"x": x, "labels": (np.arange(n) % 5).astype(np.int64)}


OCR_RAW = both(
    ocr_model,
    param("model.task", "raw"),
    npz("eval", lambda: {"x": lines(1)["x"]}),  # one line of width 40: 1 item, or 40 columns
    npz("calibration", lambda: {"x": lines(1, seed=4)["x"]}),
    param("data.checks", {"min_eval_rows": 1, "min_calibration_rows": 1}),
)

CASES = [
    Case(
        "fixed-batch-width-ambiguous",
        OCR_RAW,
        r"^edgeproof: error: params\.yaml: model\.inputs\.x\.item_axis: input 'x' "
        r"\(1, 1, 8, \?\) may hold its items on axis 0 \(batch fixed at 1\) or on axis 3 "
        r"\(dynamic 'width'\), and the eval data \(1, 1, 8, 40\) fits both: set it "
        r"\(e\.g\. item_axis: 0\)$",
    ),
    Case(
        "declared-output-contradicted",
        both(
            ocr_model,
            param("model.num_classes", 5),
            npz("eval", lambda: lines(12)),
            npz("calibration", lambda: lines(12, seed=4)),
        ),
        r"^edgeproof: error: params\.yaml: model\.outputs: a classifier's first gated output "
        r"'y' must hold logits \(items, classes\); it returns float32 \(40, 1, 5\) for one "
        r"item \(items on axis 1\): name the class output first, with its kind$",
    ),
    Case(
        "label-output-first",
        label_first_model,
        r"^edgeproof: error: params\.yaml: model\.outputs: the first output 'output_label' is "
        r"int64 labels; name the class-score output to gate \(model\.outputs: "
        r"\[\{name: <output>, kind: probabilities\}\]\)$",
    ),
    Case(
        "output-not-in-model",
        both(label_first_model, param("model.outputs", ["scores"])),
        r"params\.yaml: model\.outputs: 'scores' is not an output of the model "
        r"\(outputs: output_label, output_probability\)$",
    ),
    Case(
        "item-axis-on-a-fixed-dim",
        param("model.inputs", {"input": {"item_axis": 2}}),
        r"params\.yaml: model\.inputs\.input\.item_axis: axis 2 of input 'input' "
        r"\(\?, 1, 16, 16\) is fixed at 16: items go on a dynamic axis or one fixed at 1$",
    ),
]


@pytest.fixture
def broken_project(project: Path, seeded_store: Path) -> Path:
    """The tiny project with an MLflow store (and a champion) from an earlier run."""
    shutil.copy(seeded_store / "mlflow.db", project / "mlflow.db")
    shutil.copytree(seeded_store / "mlartifacts", project / "mlartifacts")
    return project


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_an_output_contract_nothing_decides_is_refused_and_changes_nothing(
    case: Case, broken_project: Path, prefect_home: Path, scratch: Path
) -> None:
    case.breaks(broken_project)
    before = snapshot(broken_project)
    registered = store_state(broken_project / "mlflow.db")
    done = edgeproof(broken_project, prefect_home=prefect_home, scratch=scratch)
    assert_refused(done, case.exit_code, case.message)
    assert snapshot(broken_project) == before, "the refused run changed the project folder"
    assert store_state(broken_project / "mlflow.db") == registered  # nothing registered
    assert leftovers(scratch) == []


def test_the_probability_output_named_in_params_is_gated(
    project: Path, prefect_home: Path, scratch: Path
) -> None:
    """skl2onnx's classifier (``zipmap=False``): with ``model.outputs`` naming
    ``output_probability`` the run gates it (it used to fail every candidate with
    "expected (items, classes) logits, got (N,)") and registers the winner."""
    label_first_model(project)
    set_param(project, "model.outputs", [{"name": "output_probability", "kind": "probabilities"}])
    done = edgeproof(project, prefect_home=prefect_home, scratch=scratch, timeout=600)
    assert done.returncode in (0, 1), done.explain()
    assert done.error_lines() == [], done.explain()
    assert "expected (items, classes)" not in done.stdout + done.stderr
    assert any(name == REGISTERED for name, _ in store_state(project / "mlflow.db").versions)


def test_the_fixed_batch_model_is_gated_once_item_axis_is_set(
    project: Path, prefect_home: Path, scratch: Path
) -> None:
    """The ambiguous case above with ``model.inputs.x.item_axis: 3``: the columns are the
    items, fed in batches; the output's item axis is observed (axis 0 of (T, 1, classes),
    though the graph declares [1, seqlen]) and the candidates are gated on it."""
    OCR_RAW(project)
    set_param(project, "model.inputs", {"x": {"item_axis": 3}})
    done = edgeproof(project, prefect_home=prefect_home, scratch=scratch, timeout=600)
    assert done.returncode in (0, 1), done.explain()
    assert done.error_lines() == [], done.explain()
    assert "returns float32 (?, 1, 5) (items on axis 0, observed)" in done.stdout + done.stderr
    # the registered model's MLflow signature says what the model returns, not the graph
    mlmodels = [p for p in project.glob("mlartifacts/**/MLmodel")]
    assert mlmodels, "no MLflow model was logged"
    signature = yaml.safe_load(mlmodels[0].read_text(encoding="utf-8"))["signature"]
    (output,) = json.loads(signature["outputs"])
    assert output["tensor-spec"]["shape"] == [-1, 1, 5], output
