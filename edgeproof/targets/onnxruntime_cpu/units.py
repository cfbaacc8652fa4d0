"""The units a search groups an ONNX graph into: the quantizer's nodes, by name prefix."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from edgeproof.targets.base import SearchUnit, group_units

# the ops whose weights or activations ONNX Runtime's quantizers turn into integer ops, and
# that cost the time: a unit is made of these (the small ops around them follow them)
DYNAMIC_OPS = frozenset(
    {"MatMul", "Gemm", "Conv", "Attention", "LSTM", "GRU", "EmbedLayerNormalization"}
)
STATIC_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "Attention", "LSTM", "GRU"})


def graph_units(
    model: Path, op_types: Iterable[str], max_units: int, exclude: set[str] | None = None
) -> list[SearchUnit]:
    """The units of ``model``'s quantizable nodes (of ``op_types``, named, not in
    ``exclude``), in graph order (``group_units``)."""
    import onnx

    wanted = set(op_types)
    graph = onnx.load(str(model), load_external_data=False).graph
    names = [n.name for n in graph.node if n.op_type in wanted and n.name]
    return group_units([n for n in names if n not in (exclude or set())], max_units)
