"""The eval and calibration data as MLflow datasets (``log_inputs``), so the run's page in
MLflow lists what it was measured on.

Each file is one dataset: its name is the file's stem, its digest the md5 DVC records for
the file's contents, its source the path inside the project (the DVC path), its schema the
arrays it holds (name, dtype, shape with the item axis open), and the input's context tag
says which role it played (``eval`` or ``calibration``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.tracking.lineage import file_digest, project_relative

CONTEXT_TAG = "mlflow.data.context"  # MLflow's own tag for a dataset input's role


def data_inputs(root: Path, files: Mapping[str, Path]) -> list[Any]:
    """``DatasetInput`` entities for ``files`` (role -> .npz path) of the project at ``root``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    inputs = []
    for role, path in files.items():
        dataset = Dataset(
            name=path.stem,
            digest=file_digest(path, "md5"),
            source_type="local",
            source=json.dumps({"uri": project_relative(path, root)}),
            schema=_schema(path),
        )
        inputs.append(DatasetInput(dataset, tags=[InputTag(CONTEXT_TAG, role)]))
    return inputs


def _schema(path: Path) -> str:
    """The arrays of a .npz file as MLflow's tensor schema JSON (as its numpy datasets write
    it), the item axis left open."""
    from mlflow.types import Schema, TensorSpec

    specs = []
    with np.load(path, allow_pickle=False) as arrays:
        for name in sorted(arrays.files):
            array = arrays[name]  # an NpzFile reads the member at each lookup: once
            specs.append(TensorSpec(_unsized(array.dtype), (-1, *array.shape[1:]), name))
    return json.dumps({"mlflow_tensorspec": {"features": Schema(specs).to_json(), "targets": None}})


def _unsized(dtype: np.dtype) -> np.dtype:
    """MLflow takes strings and bytes without their size ('<U5' -> str)."""
    return {"U": np.dtype(str), "S": np.dtype(bytes)}.get(dtype.kind, dtype)
