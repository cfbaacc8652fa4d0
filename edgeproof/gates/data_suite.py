"""Great Expectations suites for the eval and calibration sets, built from params.yaml.

Pure construction (no I/O): the engine turns each data file into one row per item with
the columns below and validates it against these suites (``edgeproof/data/datagate.py``).

| column | meaning |
|---|---|
| ``label`` | the item's class (classification) |
| ``class_share`` | share of the item's class among all labels of the set |
| ``finite`` | every input value of the item is finite (no NaN / inf) |
| ``value_min``, ``value_max`` | smallest / largest finite input value of the item |
| ``shape``, ``dtype`` | per-item shape (without batch) and dtype of every input |
| ``leaked`` | the item's content hash also occurs in the other split |
"""

from __future__ import annotations

from typing import Any

from edgeproof.config import DataChecks

ROW_COLUMNS = ("label", "class_share", "finite", "value_min", "value_max", "shape", "dtype",
               "leaked")  # fmt: skip


def build_suite(
    split: str,
    checks: DataChecks,
    num_classes: int | None,
    shape: str | None,
    dtypes: str,
) -> Any:
    """The suite for ``split`` ("eval" or "calibration"); ``shape`` None = dynamic dims."""
    import great_expectations as gx
    from great_expectations import expectations as gxe

    suite = gx.ExpectationSuite(name=f"edgeproof-{split}")
    min_rows = checks.min_eval_rows if split == "eval" else checks.min_calibration_rows
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=min_rows))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="dtype", value_set=[dtypes]))
    if shape is not None:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="shape", value_set=[shape]))
    if checks.value_min is not None:
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column="value_min", min_value=checks.value_min)
        )
    if checks.value_max is not None:
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column="value_max", max_value=checks.value_max)
        )
    if num_classes is not None:
        classes = list(range(num_classes))
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="label", value_set=classes))
        if split == "eval" and checks.min_class_share:
            suite.add_expectation(
                gxe.ExpectColumnDistinctValuesToContainSet(column="label", value_set=classes)
            )
        if split == "eval" and (checks.min_class_share or checks.max_class_share):
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(
                    column="class_share",
                    min_value=checks.min_class_share,
                    max_value=checks.max_class_share,
                )
            )
    if checks.no_leakage:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="leaked", value_set=[False]))
    return suite
