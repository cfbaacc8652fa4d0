"""The data gate: validate eval and calibration data with Great Expectations (GX Core 1.x).

Each data file becomes a table with one row per item (see ``gates/data_suite.py`` for the
columns) and is validated against its suite in an ephemeral GX context (nothing written to
disk, no GX Cloud). Every failed expectation is listed in one readable line each; the full
GX result JSON is kept for MLflow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeproof.config import DataChecks
from edgeproof.data.dataset import Dataset
from edgeproof.gates.data_suite import build_suite
from edgeproof.records.measurement import InputSpec


@dataclass(frozen=True)
class DataGateResult:
    """Outcome of validating one or more splits."""

    success: bool
    failures: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)  # split -> GX result (JSON)

    def error_line(self) -> str:
        """One line for a failed gate: how many expectations failed, and the first."""
        first = self.failures[0] if self.failures else "no details"
        return (
            f"data gate: {len(self.failures)} expectation(s) failed (first: {first}); "
            "nothing was optimized or registered"
        )


def item_hashes(data: Dataset) -> list[str]:
    """Content hash of every item over all its input arrays, as fed to the model (a uint8
    item and its cast float32 copy are the same item)."""
    layout = data.layout
    hashes = []
    for i in range(len(data)):
        digest = hashlib.sha256()
        for name in sorted(data.inputs):
            digest.update(np.ascontiguousarray(layout.feed(name, data.inputs[name][i])).tobytes())
        hashes.append(digest.hexdigest())
    return hashes


def item_table(data: Dataset, other_hashes: set[str], classes: bool = True) -> Any:
    """One row per item with the columns the suites check (label columns for classes).

    Values and dtypes are those fed to the model: integer data for a float input after its
    ``scale`` / ``offset`` (``model.inputs``), so ``value_min`` / ``value_max`` bound what the
    model sees."""
    import pandas as pd

    n = len(data)
    finite = np.ones(n, dtype=bool)
    vmin = np.full(n, np.inf)
    vmax = np.full(n, -np.inf)
    for name, array in data.inputs.items():
        ok, low, high = _item_range(data, name, array.reshape(n, -1))
        finite &= ok
        vmin = np.minimum(vmin, low)
        vmax = np.maximum(vmax, high)
    names = sorted(data.inputs)
    shape = ";".join("x".join(map(str, data.inputs[k].shape[1:])) for k in names)
    dtype = ";".join(str(data.layout.fed_dtype(k, data.inputs[k].dtype)) for k in names)
    table = {
        "finite": finite,
        "value_min": vmin,
        "value_max": vmax,
        "shape": [shape] * n,
        "dtype": [dtype] * n,
        "leaked": [h in other_hashes for h in item_hashes(data)],
    }
    if classes and data.labels is not None:
        labels = data.labels.astype(np.int64)
        values, counts = np.unique(labels, return_counts=True)
        share = dict(zip(values.tolist(), (counts / n).tolist(), strict=True))
        table["label"] = labels
        table["class_share"] = [share[v] for v in labels.tolist()]
    return pd.DataFrame(table)


def _item_range(
    data: Dataset, name: str, flat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item (a row of ``flat``): whether every value fed is finite, and the lowest and
    highest finite value fed (float64)."""
    if flat.dtype.kind in "iub":  # the stored ends, cast: no float copy of the whole array
        ends = [
            data.layout.feed(name, end).astype(np.float64) for end in (flat.min(1), flat.max(1))
        ]
        low, high = np.minimum(*ends), np.maximum(*ends)  # a negative scale swaps the ends
        ok_low, ok_high = np.isfinite(low), np.isfinite(high)  # float16 may overflow
        return ok_low & ok_high, np.where(ok_low, low, np.inf), np.where(ok_high, high, -np.inf)
    values = flat.astype(np.float64, copy=False)
    ok = np.isfinite(values)
    low = np.where(ok, values, np.inf).min(axis=1)
    return ok.all(axis=1), low, np.where(ok, values, -np.inf).max(axis=1)


def expected_signature(specs: list[InputSpec], data: Dataset) -> tuple[str | None, str]:
    """Per-item shape (the item axis left out; None when another dimension is dynamic) and
    dtype strings over the inputs ``data`` holds per item (not its constants)."""
    ordered = sorted((s for s in specs if s.name in data.inputs), key=lambda s: s.name)
    axes = [data.layout.item_axis(s.name) for s in ordered]
    dims = [s.shape[:axis] + s.shape[axis + 1 :] for s, axis in zip(ordered, axes, strict=True)]
    shape = None
    if all(d is not None for dd in dims for d in dd):
        shape = ";".join("x".join(map(str, dd)) for dd in dims)
    return shape, ";".join(str(s.dtype) for s in ordered)


def _describe(split: str, result: dict[str, Any]) -> str:
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("batch_id",)}
    column = kwargs.pop("column", None)
    res = result.get("result", {})
    what = config["type"] + (f" on {column}" if column else "")
    detail = ", ".join(f"{k}={v}" for k, v in kwargs.items() if v is not None)
    seen = ""
    if res.get("unexpected_count"):
        examples = ", ".join(map(str, res.get("partial_unexpected_list", [])[:3]))
        seen = f": {res['unexpected_count']} of {res.get('element_count')} rows unexpected"
        seen += f" (e.g. {examples})" if examples else ""
    elif "observed_value" in res:
        seen = f": observed {res['observed_value']}"
    return f"{split}: {what} ({detail}){seen}"


def validate_data(
    splits: dict[str, Dataset],
    checks: DataChecks,
    num_classes: int | None,
    specs: list[InputSpec],
) -> DataGateResult:
    """Validate every split; leakage is checked between eval and calibration."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # no progress bars: a CI log or the live progress would show them as noise
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("edgeproof")
    hashes = {name: set(item_hashes(data)) for name, data in splits.items()}
    failures: list[str] = []
    results: dict[str, Any] = {}
    for name, data in splits.items():
        others = set().union(*(h for k, h in hashes.items() if k != name))
        table = item_table(data, others, classes=num_classes is not None)
        shape, dtypes = expected_signature(specs, data)
        batch = (
            source.add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe(f"{name}-all")
            .get_batch(batch_parameters={"dataframe": table})
        )
        suite = build_suite(
            name, checks, num_classes if data.labels is not None else None, shape, dtypes
        )
        outcome = batch.validate(suite).to_json_dict()
        results[name] = outcome
        failures += [_describe(name, r) for r in outcome["results"] if not r["success"]]
    return DataGateResult(
        success=not failures,
        failures=failures,
        results=json.loads(json.dumps(results, default=str)),
    )
