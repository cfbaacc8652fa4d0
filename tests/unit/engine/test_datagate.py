"""The data gate (Great Expectations): each expectation fails on a crafted bad dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeproof.config import DataChecks
from edgeproof.data.datagate import validate_data
from edgeproof.data.dataset import Dataset
from edgeproof.records.measurement import InputSpec

SPECS = [InputSpec("input", np.dtype(np.float32), (None, 1, 8, 8))]
CHECKS = DataChecks(
    min_eval_rows=50, min_calibration_rows=20, value_min=0.0, value_max=1.0,
    min_class_share=0.05, max_class_share=0.2,
)  # fmt: skip


def _split(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 8, 8), dtype=np.float32)
    y = np.arange(n, dtype=np.int64) % 10  # balanced classes
    return Dataset({"input": x}, y, Path(f"split{seed}.npz"))


def _run(eval_data: Dataset, calibration: Dataset | None = None) -> list[str]:
    splits = {"eval": eval_data, "calibration": calibration or _split(40, 1)}
    result = validate_data(splits, CHECKS, 10, SPECS)
    assert result.success == (not result.failures)
    assert set(result.results) == {"eval", "calibration"}
    return result.failures


def test_clean_data_passes() -> None:
    assert _run(_split(100, 0)) == []


def _with(data: Dataset, x: np.ndarray | None = None, y: np.ndarray | None = None) -> Dataset:
    return Dataset(
        {"input": data.inputs["input"] if x is None else x},
        data.labels if y is None else y,
        data.source,
    )


def _nan() -> Dataset:
    d = _split(100, 0)
    x = d.inputs["input"].copy()
    x[3, 0, 0, 0] = np.nan
    return _with(d, x=x)


def _out_of_range() -> Dataset:
    d = _split(100, 0)
    x = d.inputs["input"].copy()
    x[5] *= 255.0
    return _with(d, x=x)


def _unknown_label() -> Dataset:
    d = _split(100, 0)
    y = d.labels.copy()
    y[7] = 12
    return _with(d, y=y)


def _imbalanced() -> Dataset:
    d = _split(100, 0)
    return _with(d, y=np.where(np.arange(100) < 60, 0, d.labels))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_nan, "eval: expect_column_values_to_be_in_set on finite"),
        (_out_of_range, "eval: expect_column_values_to_be_between on value_max"),
        (_unknown_label, "eval: expect_column_values_to_be_in_set on label"),
        (_imbalanced, "eval: expect_column_values_to_be_between on class_share"),
        (lambda: _split(30, 0), "eval: expect_table_row_count_to_be_between"),
    ],
)
def test_each_expectation_fails_with_a_clear_line(make, expected: str) -> None:
    failures = _run(make())
    assert any(f.startswith(expected) for f in failures), failures
    assert all("\n" not in f for f in failures)


def test_leakage_between_eval_and_calibration() -> None:
    eval_data = _split(100, 0)
    leaky = _with(
        _split(40, 1),
        x=np.concatenate([eval_data.inputs["input"][:2], _split(40, 1).inputs["input"][2:]]),
    )
    failures = _run(eval_data, leaky)
    leaks = [f for f in failures if "on leaked" in f]
    assert {f.split(":")[0] for f in leaks} == {"eval", "calibration"}
    assert "2 of 100 rows unexpected" in next(f for f in leaks if f.startswith("eval"))


def test_nan_message_counts_the_bad_rows() -> None:
    (line,) = [f for f in _run(_nan()) if "on finite" in f]
    assert "1 of 100 rows unexpected (e.g. False)" in line
