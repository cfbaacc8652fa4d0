"""How a data file's arrays feed a model: item axes, constant inputs, streaming state.

Data files hold one array per model input in the model's own layout, the items stacked on
the input's batch axis wherever the model has it (a recurrent state ``[2, batch, 128]``
holds its items on axis 1). An input without a batch axis (a 0-d sample rate, a fixed
table) is a constant: one array of the model's shape, fed to every call, given in the
data file or as ``model.inputs.<name>.value`` in params. A streaming state
(``model.inputs.<name>.carried_from: <output>``) may be left out of the data: it starts at
zeros and each call's output is fed back at the next call of the same stream.

A float input may take small integer data (``uint8``, ``int8``, ``uint16``, ``int16``: a
0-255 image set is a quarter of its float32 size): the array stays integer in memory and is
cast one call's batch at a time, where :meth:`Dataset.batch` hands out the feeds, to the
input's dtype as ``value * scale + offset`` (:class:`InputCast`, ``model.inputs.<name>.scale``
/ ``offset``). Every session, calibrator and representative data set therefore sees the
model's own dtype; :meth:`FeedLayout.dtype_error` says which combinations are refused.

:class:`FeedLayout` is decided once per run from the ONNX graph and params
(``onnx_model.feed_layout``) and travels as JSON to the measurement workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STREAM_KEY = "stream"  # reserved: which stream each eval item belongs to (state resets)


@dataclass(frozen=True)
class StateInput:
    """A streaming state input: the output carried into it, and one item's zero state."""

    output: str
    shape: tuple[int, ...]  # the model's shape with the item axis at size 1
    dtype: str

    def zeros(self, items: int, axis: int) -> np.ndarray:
        shape = list(self.shape)
        shape[axis] = items
        return np.zeros(shape, dtype=self.dtype)


CASTABLE = frozenset(map(np.dtype, ("uint8", "int8", "uint16", "int16")))  # exact in float32
CASTABLE_NAMES = "uint8, int8, uint16 or int16"


@dataclass(frozen=True)
class InputCast:
    """A model input's dtype and ``model.inputs.<name>.scale`` / ``offset``: integer data
    for a float input is fed as ``value * scale + offset``, computed in float64 and rounded
    once to the input's ``dtype``."""

    dtype: str  # the model input's dtype
    scale: float = 1.0
    offset: float = 0.0

    @property
    def scaled(self) -> bool:
        """Whether params set a scale or an offset."""
        return (self.scale, self.offset) != (1.0, 0.0)

    def casts(self, dtype: np.dtype) -> bool:
        """Whether data of ``dtype`` is cast (integer data for a float input)."""
        return np.dtype(self.dtype).kind == "f" and np.dtype(dtype) in CASTABLE

    def apply(self, array: np.ndarray) -> np.ndarray:
        """``array`` as the input takes it: cast when it is integer data, else as is."""
        if not self.casts(array.dtype):
            return array
        values = array.astype(np.float64)
        if self.scale != 1.0:
            values *= self.scale
        if self.offset != 0.0:
            values += self.offset
        return values.astype(self.dtype)


@dataclass(frozen=True)
class FeedLayout:
    """Per model input: where its items are, or that it is a constant or a carried state.

    The default (no model known) stacks items on axis 0 and takes a 0-d array as a
    constant, edgeproof's data format before layouts were read from the graph.
    """

    item_axes: dict[str, int] = field(default_factory=dict)  # input -> item axis (0 if absent)
    output_axes: dict[str, int] = field(default_factory=dict)  # output -> item axis
    constant_inputs: frozenset[str] = frozenset()  # inputs without an item axis
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # from params
    states: dict[str, StateInput] = field(default_factory=dict)
    one_item_per_call: bool = False  # an item axis fixed at 1
    casts: dict[str, InputCast] = field(default_factory=dict)  # input -> dtype, scale, offset
    # the gated outputs in order (``model.outputs``, or those observed with an item axis);
    # empty: every output, as the session returns them
    outputs: tuple[str, ...] = ()
    output_kinds: dict[str, str] = field(default_factory=dict)  # logits / probabilities / labels
    # output -> {"dtype", "shape"} as the FP32 model returned them at resolve (the item
    # axis as None), where they differ from the graph's declaration
    observed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def item_axis(self, name: str) -> int:
        return self.item_axes.get(name, 0)

    def output_axis(self, name: str) -> int:
        return self.output_axes.get(name, 0)

    def is_constant(self, name: str, array: np.ndarray) -> bool:
        return name in self.constant_inputs or name in self.constants or array.ndim == 0

    @property
    def max_batch(self) -> int | None:
        """The largest batch a call takes: 1 for a streaming or fixed-batch model."""
        return 1 if self.one_item_per_call or self.states else None

    def to_model(self, name: str, items: np.ndarray) -> np.ndarray:
        """Items-first ``items`` in the model's layout (items on the input's axis)."""
        axis = self.item_axis(name)
        return items if axis == 0 else np.moveaxis(items, 0, axis)

    def feed(self, name: str, array: np.ndarray) -> np.ndarray:
        """A data array (in the model's layout) as the input takes it: integer data for a
        float input cast to its dtype with its scale and offset, anything else as is."""
        cast = self.casts.get(name)
        return array if cast is None else cast.apply(array)

    def fed_dtype(self, name: str, dtype: np.dtype) -> np.dtype:
        """The dtype an array of ``dtype`` is fed to input ``name`` as."""
        cast = self.casts.get(name)
        return np.dtype(cast.dtype) if cast is not None and cast.casts(dtype) else np.dtype(dtype)

    def dtype_error(self, what: str, name: str, dtype: np.dtype, expected: np.dtype) -> str | None:
        """Why ``what`` data's array of ``dtype`` cannot feed input ``name`` (the model's
        ``expected`` dtype), in one line; None when it can (the same dtype, or integer data
        a float input casts)."""
        dtype, expected = np.dtype(dtype), np.dtype(expected)
        cast = self.casts.get(name)
        scaled = cast is not None and cast.scaled
        key = f"params.yaml: model.inputs.{name}.scale / offset"
        line = f"{what} data {name!r} has dtype {dtype}, model expects {expected}"
        if expected.kind != "f":
            if scaled:
                store = "" if dtype == expected else f", and store {name!r} as {expected}"
                return f"{line}: {key} cast data to a float input only: remove them{store}"
            if dtype.kind == "f":
                return (
                    f"{line}: store {name!r} as {expected} (a float array cannot feed an "
                    f"integer input; {key} cast integer data to a float input only)"
                )
            return None if dtype == expected else line
        if dtype == expected:
            if not scaled:
                return None
            return (
                f"{what} data {name!r} is already {dtype}: {key} cast integer data only "
                f"({CASTABLE_NAMES}): remove them, or store {name!r} as integers"
            )
        if dtype in CASTABLE:
            return None  # cast on feed with the input's scale and offset (default 1 and 0)
        return f"{line}: a float input takes {expected}, or {CASTABLE_NAMES} data cast with {key}"

    def from_model(self, name: str, array: np.ndarray) -> np.ndarray:
        """An input array in the model's layout, items first."""
        return items_first(array, self.item_axis(name))

    def output_items(self, name: str, array: np.ndarray) -> np.ndarray:
        """A model output, items first."""
        return items_first(array, self.output_axis(name))

    def output_kind(self, name: str) -> str:
        """What output ``name`` holds for a classifier: logits (the default),
        probabilities or labels."""
        return self.output_kinds.get(name, "logits")

    def gated(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The gated outputs of ``outputs`` (name -> array), in the gated order."""
        if not self.outputs:
            return dict(outputs)
        return {name: outputs[name] for name in self.outputs if name in outputs}

    def to_json(self) -> dict[str, Any]:
        return {
            "item_axes": self.item_axes,
            "output_axes": self.output_axes,
            "constant_inputs": sorted(self.constant_inputs),
            "constants": {
                k: {"value": v.tolist(), "dtype": str(v.dtype)} for k, v in self.constants.items()
            },
            "states": {
                k: {"output": s.output, "shape": list(s.shape), "dtype": s.dtype}
                for k, s in self.states.items()
            },
            "one_item_per_call": self.one_item_per_call,
            "casts": {
                k: {"dtype": c.dtype, "scale": c.scale, "offset": c.offset}
                for k, c in self.casts.items()
            },
            "outputs": list(self.outputs),
            "output_kinds": self.output_kinds,
            "observed": self.observed,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> FeedLayout:
        if not raw:
            return cls()
        return cls(
            item_axes={k: int(v) for k, v in raw["item_axes"].items()},
            output_axes={k: int(v) for k, v in raw["output_axes"].items()},
            constant_inputs=frozenset(raw["constant_inputs"]),
            constants={
                k: np.asarray(v["value"], dtype=v["dtype"]) for k, v in raw["constants"].items()
            },
            states={
                k: StateInput(v["output"], tuple(v["shape"]), v["dtype"])
                for k, v in raw["states"].items()
            },
            one_item_per_call=bool(raw["one_item_per_call"]),
            casts={
                k: InputCast(v["dtype"], float(v["scale"]), float(v["offset"]))
                for k, v in raw.get("casts", {}).items()
            },
            outputs=tuple(raw.get("outputs", ())),
            output_kinds=dict(raw.get("output_kinds", {})),
            observed=dict(raw.get("observed", {})),
        )


def items_first(array: np.ndarray, axis: int) -> np.ndarray:
    """``array`` with its items (on ``axis``) moved to axis 0."""
    return array if axis == 0 else np.moveaxis(array, axis, 0)


Outputs = list[np.ndarray]


def stream_calls(
    run: Callable[[dict[str, np.ndarray]], Outputs],
    output_names: list[str],
    items: Iterator[dict[str, np.ndarray]],
    layout: FeedLayout,
    streams: np.ndarray | None,
) -> Iterator[Outputs]:
    """Call ``run`` item by item, feeding each state input its output of the previous call
    of the same stream (the item's own state, or zeros, at a stream's first item)."""
    position = {name: i for i, name in enumerate(output_names)}
    carried: dict[str, np.ndarray] = {}
    for index, feeds in enumerate(items):
        if streams is not None and index > 0 and streams[index] != streams[index - 1]:
            carried = {}
        outputs = run({**feeds, **carried})
        carried = {name: outputs[position[s.output]] for name, s in layout.states.items()}
        yield outputs
