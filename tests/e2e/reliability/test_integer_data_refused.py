"""Integer data and ``model.inputs.<name>.scale`` / ``offset``: the combinations that cannot
be fed are refused by ``edgeproof run`` before anything is written, in one line naming the
input, both dtypes and the key (same checks as the catalogue in ``test_bad_inputs.py``).

  int-input-uint8-scaled    eval data 'input' has dtype uint8, model expects int64:
                            params.yaml: model.inputs.input.scale / offset cast data to a
                            float input only: remove them, and store 'input' as int64
  int-input-float-data      eval data 'input' has dtype float32, model expects int64: store
                            'input' as int64 (a float array cannot feed an integer input; ...)
  float-data-scaled         eval data 'input' is already float32: params.yaml:
                            model.inputs.input.scale / offset cast integer data only ...
  int64-for-float-input     eval data 'input' has dtype int64, model expects float32: a float
                            input takes float32, or uint8, int8, uint16 or int16 data cast ...
  scale-beside-value        model.inputs.input: ... scale / offset cast the data file's
                            integer array for this input: not with value or carried_from
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.reliability.project import assert_refused, edgeproof, leftovers, snapshot
from tests.e2e.reliability.test_bad_inputs import Case, both, images, labels, model_edit, npz, param


def _integer_input(model: Any) -> None:
    """The model's input declared int64, cast to float before its first node."""
    from onnx import TensorProto, helper

    model.graph.node[0].input[0] = "input_float"
    model.graph.node.insert(
        0, helper.make_node("Cast", ["input"], ["input_float"], to=TensorProto.FLOAT)
    )
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64


def _uint8(split: str) -> Any:
    return npz(split, lambda: {"input": (images() * 255).astype(np.uint8), "labels": labels()})


SCALE = 0.00392156862745098
CASES = [
    Case(
        "int-input-uint8-scaled",
        both(
            model_edit(_integer_input),
            _uint8("eval"),
            _uint8("calibration"),
            param("model.inputs", {"input": {"scale": SCALE}}),
        ),
        r"^edgeproof: error: eval data 'input' has dtype uint8, model expects int64: "
        r"params\.yaml: model\.inputs\.input\.scale / offset cast data to a float input only: "
        r"remove them, and store 'input' as int64$",
    ),
    Case(
        "int-input-float-data",
        model_edit(_integer_input),
        r"^edgeproof: error: eval data 'input' has dtype float32, model expects int64: store "
        r"'input' as int64 \(a float array cannot feed an integer input; params\.yaml: "
        r"model\.inputs\.input\.scale / offset cast integer data to a float input only\)$",
    ),
    Case(
        "float-data-scaled",
        param("model.inputs", {"input": {"scale": SCALE}}),
        r"^edgeproof: error: eval data 'input' is already float32: params\.yaml: "
        r"model\.inputs\.input\.scale / offset cast integer data only",
    ),
    Case(
        "int64-for-float-input",
        npz("eval", lambda: {"input": (images() * 255).astype(np.int64), "labels": labels()}),
        r"eval data 'input' has dtype int64, model expects float32: a float input takes "
        r"float32, or uint8, int8, uint16 or int16 data cast with params\.yaml: "
        r"model\.inputs\.input\.scale / offset$",
    ),
    Case(
        "scale-beside-value",
        param("model.inputs", {"input": {"value": 0.5, "scale": SCALE}}),
        r"params\.yaml: model\.inputs\.input: .*scale / offset cast the data file's integer "
        r"array for this input: not with value or carried_from",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_integer_data_that_cannot_be_fed_is_refused_and_changes_nothing(
    case: Case, project: Path, prefect_home: Path, scratch: Path
) -> None:
    case.breaks(project)
    before = snapshot(project)
    done = edgeproof(project, *case.args, prefect_home=prefect_home, scratch=scratch)
    assert_refused(done, case.exit_code, case.message)
    assert snapshot(project) == before, "the refused run changed the project folder"
    assert leftovers(scratch) == []
