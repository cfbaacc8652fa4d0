"""Static shapes for onnx2tf: the ONNX model as TFLite wants it, pinned to the data.

onnx2tf converts dynamic graphs badly: Paddle's ``-1`` batch is read as a size ("Dimension
-1 must be >= 0"), a transformer with dynamic batch *and* sequence needs a ``tf.Reshape``
with two unknown dimensions, and XNNPack cannot prepare a detector whose height and width
are dynamic. TFLite models are static in practice, and every eval item of a data file has
the same shape, so the copy handed to onnx2tf has:

- each negative dimension rewritten as a symbolic one (``-1`` means "dynamic");
- each dynamic dimension but the input's item axis fixed to the data's size;
- with ``fixed_batch``, the item axis fixed at 1 too (the session then runs a batch item by
  item), the ladder's last step;
- node names TensorFlow takes as scope names: characters outside ``[A-Za-z0-9_./>-]``
  replaced (Paddle2ONNX names nodes ``Softmax@0``, an invalid scope name).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from edgeproof.data.dataset import Dataset
from edgeproof.onnx.model import external_data


def pinned_model(model: Path, out: Path, data: Dataset, *, fixed_batch: bool) -> list[str]:
    """Write ``model`` with its inputs' shapes pinned to ``data``'s; what was pinned, one
    entry per input changed (empty: nothing to pin, ``out`` is a plain copy)."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    initializers = {init.name for init in proto.graph.initializer}
    call = data.batch(0, 1)
    changed = []
    for value in proto.graph.input:
        if value.name in initializers or value.name not in call:
            continue
        dims = value.type.tensor_type.shape.dim
        axis = data.layout.item_axis(value.name) if value.name in data.inputs else None
        sizes = call[value.name].shape
        before = _shown(dims)
        for i, dim in enumerate(dims):
            dynamic = not dim.HasField("dim_value") or dim.dim_value < 0
            if not dynamic or i >= len(sizes):
                continue
            if i == axis and not fixed_batch:
                dim.Clear()
                dim.dim_param = "batch"
            else:
                dim.Clear()
                dim.dim_value = int(sizes[i])
        if _shown(dims) != before:
            changed.append(f"{value.name}: {before} -> {_shown(dims)}")
    renamed = _scope_safe_names(proto.graph)
    if renamed:
        changed.append(f"{renamed} node names made valid TensorFlow scope names")
    onnx.save(proto, str(out))
    for _, location in external_data(proto):  # beside the copy: their paths are relative
        source, target = model.parent / location, out.parent / location
        if location and source.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return changed


_NOT_IN_SCOPE = re.compile(r"[^A-Za-z0-9_./>-]")


def _scope_safe_names(graph: object) -> int:
    """Rename the graph's nodes whose names TensorFlow refuses as scopes; how many."""
    nodes = graph.node  # type: ignore[attr-defined]
    taken = {node.name for node in nodes}
    renamed = 0
    for node in nodes:
        if not _NOT_IN_SCOPE.search(node.name):
            continue
        base = _NOT_IN_SCOPE.sub("_", node.name)
        name, i = base, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        node.name = name
        renamed += 1
    return renamed


def _shown(dims: object) -> str:
    parts = []
    for dim in dims:  # type: ignore[attr-defined]
        if dim.HasField("dim_value") and dim.dim_value >= 0:
            parts.append(str(dim.dim_value))
        else:
            parts.append(dim.dim_param or "?")
    return "(" + ", ".join(parts) + ")"
