"""Which TFLite tensor is which ONNX tensor, and how its axes were moved.

Facts this relies on (onnx2tf 1.28.8 + TFLiteConverter from the SavedModel, checked here):
- 3-D, 4-D and 5-D graph inputs become channel-last (NCW -> NWC, NCHW -> NHWC, NCDHW ->
  NDHWC: permutation (0, 2, ..., 1)); other ranks keep their layout.
- Outputs of spatial ops stay channel-last too: a Conv output that is NCHW in ONNX is NHWC
  in the TFLite model (numerically checked against onnxruntime); a (N, classes) output is
  unchanged.
- The TFLite signature ``serving_default`` keeps the ONNX input names (``x.1`` stays
  ``x.1``; only the SavedModel's own keys are sanitized to ``x_1``), and names the outputs
  ``output_0`` ... ``output_{k-1}`` in the ONNX graph's output order; the output tensors
  themselves are ``PartitionedCall:<i>`` with the same ``i``.
- ``get_output_details()`` order is NOT the signature order: go through the signature.
So the layout of each tensor is decided by its shapes: identity or channel-last, whichever
fits; when both fit (e.g. 8x8x8 feature maps) onnx2tf's convention, channel-last, wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Shape = Sequence[int | None]


def channel_last(rank: int) -> tuple[int, ...]:
    """The permutation NC... -> N...C for a tensor of ``rank`` dimensions."""
    return (0, *range(2, rank), 1)


def inverse(perm: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes ``perm``."""
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


def _fits(want: Shape, got: Shape) -> bool:
    """Same rank, and every dimension equal or dynamic (None or -1) on either side."""
    if len(want) != len(got):
        return False
    return all(
        a is None or b is None or a < 0 or b < 0 or a == b for a, b in zip(want, got, strict=True)
    )


def layout_perm(onnx_shape: Shape, tflite_shape: Shape) -> tuple[int, ...] | None:
    """``perm`` with ``tflite = onnx.transpose(perm)``, or None when no known layout fits."""
    rank = len(onnx_shape)
    if len(tflite_shape) != rank:
        return None
    if 3 <= rank <= 5:
        last = channel_last(rank)
        if _fits([onnx_shape[p] for p in last], tflite_shape):
            return last
    if _fits(onnx_shape, tflite_shape):
        return tuple(range(rank))
    return None


def sanitize(name: str) -> str:
    """A tensor name as TensorFlow keys it (characters other than [A-Za-z0-9_] -> ``_``)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def match_inputs(onnx_names: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
    """ONNX input name -> TFLite/SavedModel input key: by name, then sanitized name (also
    inside ``serving_default_<name>:0``), then, when none matched, by position."""
    found: dict[str, str] = {}
    by_sanitized = {sanitize(k): k for k in keys}
    # tensor names of a model without signatures: serving_default_<name>:0
    by_sanitized |= {sanitize(re.sub(r"^serving_default_|:\d+$", "", k)): k for k in keys}
    for name in onnx_names:
        if name in keys:
            found[name] = name
        elif sanitize(name) in by_sanitized:
            found[name] = by_sanitized[sanitize(name)]
    if not found and len(onnx_names) == len(keys):
        return dict(zip(onnx_names, keys, strict=True))
    missing = [n for n in onnx_names if n not in found]
    if missing:
        raise ValueError(f"no TFLite input for ONNX input(s) {missing} (TFLite has {list(keys)})")
    return found


def match_outputs(onnx_names: Sequence[str], keys: Sequence[str]) -> list[tuple[str, str]]:
    """(name, TFLite output key) in ONNX output order.

    Keys that are the ONNX names match by name; onnx2tf's signature keys ``output_<i>``, or
    without a signature the tensor names ``...PartitionedCall:<i>`` (``Identity_<i>`` from a
    concrete function), are ONNX output ``i``. Otherwise the TFLite names themselves are
    the names, in their natural order.
    """
    if set(keys) == set(onnx_names):
        return [(n, n) for n in onnx_names]
    numbered = {i: k for k in keys if (i := _output_index(k)) is not None}
    if len(numbered) == len(keys) == len(onnx_names) and set(numbered) == set(range(len(keys))):
        return [(name, numbered[i]) for i, name in enumerate(onnx_names)]
    return [(k, k) for k in sorted(keys, key=_natural)]


def _output_index(key: str) -> int | None:
    """``i`` of ``output_<i>``, ``<scope>:<i>`` or ``Identity_<i>`` (``Identity`` = 0)."""
    if key == "Identity":
        return 0
    m = re.fullmatch(r"(?:output_|Identity_|.*:)(\d+)", key)
    return int(m.group(1)) if m else None


def _natural(key: str) -> tuple[str, int]:
    """Sort ``PartitionedCall:10`` after ``PartitionedCall:9``."""
    m = re.fullmatch(r"(.*?)(\d+)", key)
    return (m.group(1), int(m.group(2))) if m else (key, -1)
