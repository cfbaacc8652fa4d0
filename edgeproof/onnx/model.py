"""Checks on a user's ONNX file before any runtime touches it.

An ONNX file is untrusted input: it is size-capped, parsed with ``onnx.load`` (protobuf,
no code execution) and validated with ``onnx.checker`` on its path (so models over 2 GB
with external data are checked too) before any runtime loads it. Its declared inputs are
what the data files must provide: names, element types and the static dimensions.

Before any work, a model that cannot end well is refused with one line: no outputs, an
external data file that is missing (or outside the model's folder) and, for targets that
run it in ONNX Runtime, an IR version, opset or op domain that the installed ONNX Runtime
does not support (asked of ONNX Runtime itself: its operator schemas, and a one-node
model stamped with the same IR version and opsets).
:func:`describe_inputs` characterizes each input (its symbolic batch axis, wherever it
is, and its fixed dimensions); :func:`feed_layout` turns that and ``model.inputs`` into
how data feeds the model; :func:`check_data_matches` checks a data file against every
fixed dimension.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import InputConfig, OutputConfig
from edgeproof.data.dataset import Dataset
from edgeproof.data.feed import FeedLayout, InputCast, StateInput
from edgeproof.errors import ConfigError, InputError, first_line
from edgeproof.records.measurement import InputSpec

MAX_MODEL_BYTES = 4 * 1024**3


# Targets that run the model in ONNX Runtime: their models must pass its IR, opset and op
# domain checks (other targets convert the model and have their own limits).
ONNXRUNTIME_TARGETS = frozenset({"onnxruntime-cpu", "olive"})


def check_onnx(path: Path, *, for_onnxruntime: bool = False) -> list[InputSpec]:
    """Validate an ONNX file and return its graph inputs; raises InputError.

    Always: parsable, checker-valid, external data present in the model's folder, at
    least one output and one input. ``for_onnxruntime``: also the installed ONNX
    Runtime's IR version, opset and op domain support (:func:`check_runtime_support`).
    """
    import onnx

    if path.is_dir():
        raise InputError(f"model path is a directory, not a file: {path}")
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise InputError(f"model file too large (> {MAX_MODEL_BYTES >> 30} GiB): {path}")
    try:  # first: the checker's own message for a missing external file is cryptic
        check_external_data(onnx.load(str(path), load_external_data=False), path)
    except InputError:
        raise
    except Exception:  # unparsable: the checker below names the problem
        pass
    try:
        onnx.checker.check_model(str(path), full_check=False)
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several unrelated types for a bad file
        first = first_line(exc, 160)
        raise InputError(f"model is not a valid ONNX file ({first}): {path}") from None
    if not model.graph.output:
        raise InputError(f"model declares no outputs (nothing to evaluate): {path}")
    check_tensor_outputs(model, path)
    if for_onnxruntime:
        check_runtime_support(model, path)
    specs = _specs(_layouts(model))
    if not specs:
        raise InputError(f"model declares no inputs: {path}")
    return specs


def check_tensor_outputs(model: Any, path: Path) -> None:
    """Every graph output must be a tensor: outputs are compared item by item as arrays.
    A sequence or map (skl2onnx's ZipMap: ``output_probability`` as a sequence of maps) is
    refused naming the output and the exporter option that gives a tensor instead."""
    for value in model.graph.output:
        kind = value.type.WhichOneof("value")
        if kind == "tensor_type":
            continue
        described = _type_text(value.type)
        zipmap = any(n.op_type == "ZipMap" and value.name in n.output for n in model.graph.node)
        hint = (
            "export it as a tensor (skl2onnx: options={id(model): {'zipmap': False}}, "
            "probabilities as float [N, classes])"
            if zipmap or "map" in described
            else "export it as a tensor or drop it from the graph outputs"
        )
        made = " (made by ZipMap, ai.onnx.ml)" if zipmap else ""
        raise InputError(
            f"model output {value.name!r} is a {described}{made}, not a tensor: "
            f"edgeproof compares tensor outputs; {hint}: {path}"
        )


def _type_text(kind: Any) -> str:
    """An ONNX type in words: ``sequence of map(int64 -> tensor(float))``."""
    import onnx

    which = kind.WhichOneof("value")
    if which == "tensor_type":
        return f"tensor({onnx.helper.tensor_dtype_to_np_dtype(kind.tensor_type.elem_type)})"
    if which == "sequence_type":
        return f"sequence of {_type_text(kind.sequence_type.elem_type)}"
    if which == "map_type":
        key = onnx.helper.tensor_dtype_to_np_dtype(kind.map_type.key_type)
        return f"map({key} -> {_type_text(kind.map_type.value_type)})"
    if which == "optional_type":
        return f"optional {_type_text(kind.optional_type.elem_type)}"
    return str(which or "untyped value").replace("_type", "")


@dataclass(frozen=True)
class InputLayout:
    """One graph input as a data file must feed it.

    ``batch_axis`` is the first symbolic dimension, wherever it is (axis 1 for a recurrent
    state ``[2, batch, 128]``), None when every dimension is fixed or the input is a
    scalar (a constant input such as a sample rate). ``fixed`` maps axis -> size for every
    fixed dimension, the batch axis excluded by construction.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]
    dim_names: tuple[str | None, ...]  # the symbolic names (dim_param), None where unnamed
    batch_axis: int | None
    fixed: dict[int, int]

    @property
    def is_scalar(self) -> bool:
        """A 0-d input: one value for the whole run, not one per item."""
        return not self.shape

    @property
    def item_axis(self) -> int | None:
        """The axis that items are stacked on (:func:`item_axis_of`)."""
        return item_axis_of(self.shape)


def item_axis_of(shape: tuple[int | None, ...]) -> int | None:
    """The axis items are stacked on: the first symbolic dimension, else the first fixed
    at 1 (a batch-1 model fed one item at a time: ``[2, 1, 128]`` -> axis 1), else None
    (a constant: a scalar, or a fixed table)."""
    for wanted in (None, 1):
        found = next((axis for axis, d in enumerate(shape) if d == wanted), None)
        if found is not None:
            return found
    return None


def describe_inputs(path: Path) -> list[InputLayout]:
    """The layout of each graph input of a model that :func:`check_onnx` accepted."""
    import onnx

    return _describe(onnx.load(str(path), load_external_data=False))


def _describe(model: Any) -> list[InputLayout]:
    from onnx import helper

    return [
        InputLayout(
            name=raw.name,
            dtype=np.dtype(helper.tensor_dtype_to_np_dtype(raw.elem_type)),
            shape=raw.shape,
            dim_names=raw.dim_names,
            batch_axis=next((axis for axis, d in enumerate(raw.shape) if d is None), None),
            fixed={axis: d for axis, d in enumerate(raw.shape) if d is not None},
        )
        for raw in _layouts(model)
    ]


def graph_signature(
    path: Path, observed: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[list[InputSpec], list[InputSpec]]:
    """(inputs, outputs) of an ONNX graph: name, dtype, shape (None = dynamic), as
    declared, or as observed at resolve where ``observed`` (``FeedLayout.observed``: output
    -> dtype and shape, the item axis None) says the model returns something else."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    outputs = _specs(_layouts(model, outputs=True))
    seen = observed or {}
    outputs = [
        InputSpec(o.name, np.dtype(seen[o.name]["dtype"]), tuple(seen[o.name]["shape"]))
        if o.name in seen
        else o
        for o in outputs
    ]
    return _specs(_layouts(model)), outputs


def _specs(layouts: list[_RawInput]) -> list[InputSpec]:
    from onnx import helper

    return [
        InputSpec(raw.name, np.dtype(helper.tensor_dtype_to_np_dtype(raw.elem_type)), raw.shape)
        for raw in layouts
    ]


@dataclass(frozen=True)
class DataShapes:
    """What a data file says about item axes: each array's shape (read from the ``.npz``
    headers) and the number of labels (None without labels)."""

    shapes: dict[str, tuple[int, ...]]
    labels: int | None = None


def feed_layout(
    path: Path,
    inputs: Mapping[str, InputConfig],
    outputs: Sequence[OutputConfig] | None = None,
    data: DataShapes | None = None,
) -> FeedLayout:
    """How data feeds the model: each input's item axis, the constants and streaming
    states of ``model.inputs`` (checked against the graph: ConfigError naming the key),
    and the outputs' item axes as declared or set in ``model.outputs`` (the observation at
    resolve, :mod:`edgeproof.onnx.observe`, settles the rest).

    The one place item axes are decided: ``model.inputs.<name>.item_axis`` when set, else
    the graph's reading (:func:`item_axis_of`); an input whose batch is fixed at 1 before a
    dynamic axis (``[1, 1, 64, width]``) may hold its items on either: ``data`` (the eval
    file's shapes) decides, and without it the first dynamic axis is taken provisionally.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    layouts = _describe(model)
    by_name = {layout.name: layout for layout in layouts}
    declared = {raw.name: raw for raw in _layouts(model, outputs=True)}
    for name in inputs:
        if name not in by_name:
            raise ConfigError(
                f"params.yaml: model.inputs.{name}: not an input of the model "
                f"(inputs: {', '.join(by_name)})"
            )
    for out in outputs or ():
        if out.name not in declared:
            raise ConfigError(
                f"params.yaml: model.outputs: {out.name!r} is not an output of the model "
                f"(outputs: {', '.join(declared)})"
            )
    axes = {x.name: _input_axis(x, inputs.get(x.name), data) for x in layouts}
    constants: dict[str, np.ndarray] = {}
    states: dict[str, StateInput] = {}
    for name, config in inputs.items():
        layout = by_name[name]
        if config.value is not None:
            constants[name] = _constant(name, config.value, layout)
        elif config.carried_from is not None:
            states[name] = _state(name, config.carried_from, layout, declared)
    scaling = {name: (config.scale, config.offset) for name, config in inputs.items()}
    output_axes: dict[str, int | None] = {
        name: item_axis_of(raw.shape) for name, raw in declared.items()
    }
    for name, state in states.items():  # a state output holds items as its input does
        output_axes[state.output] = axes[name]
    for out in outputs or ():
        if out.item_axis != "auto":
            output_axes[out.name] = out.item_axis
    kinds = {o.name: o.kind for o in outputs or () if o.kind is not None}
    return FeedLayout(
        item_axes={name: axis for name, axis in axes.items() if axis},
        output_axes={name: axis for name, axis in output_axes.items() if axis},
        constant_inputs=frozenset(name for name, axis in axes.items() if axis is None),
        constants=constants,
        states=states,
        one_item_per_call=any(
            axes[x.name] is not None and x.shape[axes[x.name]] == 1 for x in layouts
        ),
        casts={x.name: InputCast(str(x.dtype), *scaling.get(x.name, (1.0, 0.0))) for x in layouts},
        outputs=tuple(o.name for o in outputs or ()),
        output_kinds=kinds,
    )


def ambiguous_axes(layout: InputLayout) -> tuple[int, int] | None:
    """(the first axis fixed at 1, the first dynamic axis) when the first comes before the
    second: a fixed batch of 1 and, say, a dynamic width (``[1, 1, 64, width]``), whose
    items may be on either; None when the graph's reading is plain."""
    first_one = next((axis for axis, d in enumerate(layout.shape) if d == 1), None)
    if first_one is None or layout.batch_axis is None or first_one > layout.batch_axis:
        return None
    return first_one, layout.batch_axis


def _input_axis(
    layout: InputLayout, config: InputConfig | None, data: DataShapes | None
) -> int | None:
    key = f"params.yaml: model.inputs.{layout.name}.item_axis"
    chosen = getattr(config, "item_axis", "auto")
    if chosen != "auto":
        if chosen is None:
            return None
        if chosen >= len(layout.shape) or layout.shape[chosen] not in (None, 1):
            size = (
                "out of range"
                if chosen >= len(layout.shape)
                else f"fixed at {layout.shape[chosen]}"
            )
            raise ConfigError(
                f"{key}: axis {chosen} of input {layout.name!r} {_shape(layout.shape)} is "
                f"{size}: items go on a dynamic axis or one fixed at 1"
            )
        return chosen
    if config is not None and (config.value is not None or config.carried_from is not None):
        return layout.item_axis
    both = ambiguous_axes(layout)
    if both is None or data is None or layout.name not in data.shapes:
        return layout.item_axis
    shape = data.shapes[layout.name]
    fits = [axis for axis in both if _fits(layout.shape, shape, axis, data.labels)]
    if len(fits) == 1:
        return fits[0]
    if not fits:
        return layout.item_axis  # the data check names what does not fit
    fixed, dynamic = both
    name = layout.dim_names[dynamic]
    dim = f"dynamic {name!r}" if name else "dynamic"
    raise ConfigError(
        f"{key}: input {layout.name!r} {_shape(layout.shape)} may hold its items on axis "
        f"{fixed} (batch fixed at 1) or on axis {dynamic} ({dim}), and the eval data "
        f"{shape} fits both: set it (e.g. item_axis: {fixed})"
    )


def _fits(
    declared: tuple[int | None, ...], shape: tuple[int, ...], axis: int, labels: int | None
) -> bool:
    """Whether a data array of ``shape`` fits the input with its items on ``axis``."""
    if len(shape) != len(declared):
        return False
    fixed = all(
        i == axis or d is None or d == got
        for i, (d, got) in enumerate(zip(declared, shape, strict=True))
    )
    return fixed and (labels is None or shape[axis] == labels)


def _constant(name: str, value: Any, layout: InputLayout) -> np.ndarray:
    key = f"params.yaml: model.inputs.{name}.value"
    try:
        array = np.asarray(value, dtype=layout.dtype)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: not a {layout.dtype} array ({exc})") from None
    fits = array.ndim == len(layout.shape) and all(
        want is None or got == want for got, want in zip(array.shape, layout.shape, strict=True)
    )
    if not fits:
        raise ConfigError(
            f"{key}: has shape {array.shape}, the model's input is {_shape(layout.shape)}"
        )
    return array


def _state(
    name: str, output: str, layout: InputLayout, outputs: dict[str, _RawInput]
) -> StateInput:
    from onnx import helper

    key = f"params.yaml: model.inputs.{name}.carried_from"
    if output not in outputs:
        raise ConfigError(f"{key}: {output!r} is not an output of the model ({', '.join(outputs)})")
    axis = layout.item_axis
    if axis is None:
        raise ConfigError(f"{key}: input {name!r} {_shape(layout.shape)} has no batch axis")
    shape = tuple(1 if i == axis else d for i, d in enumerate(layout.shape))
    zero_state = tuple(d for d in shape if d is not None)
    if len(zero_state) != len(shape):
        raise ConfigError(
            f"{key}: input {name!r} {_shape(layout.shape)} has a dynamic dimension besides "
            "its batch axis: the zero state needs its size"
        )
    raw = outputs[output]
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(raw.elem_type))
    if dtype != layout.dtype or len(raw.shape) not in (0, len(shape)):
        raise ConfigError(
            f"{key}: output {output!r} ({dtype} {_shape(raw.shape)}) cannot feed input "
            f"{name!r} ({layout.dtype} {_shape(layout.shape)})"
        )
    return StateInput(output, zero_state, str(layout.dtype))


def check_external_data(model: Any, path: Path) -> None:
    """Raise InputError when an external data file of ``model`` is missing or lies
    outside the model's folder (an untrusted model must not read other files)."""
    folder = path.resolve().parent
    for tensor, location in external_data(model):
        target = (folder / location).resolve()
        if not location or not target.is_relative_to(folder):
            raise InputError(
                f"model tensor {tensor.name!r} points to external data outside the model's "
                f"folder ({location!r}): {path}"
            )
        if not target.is_file():
            raise InputError(
                f"model tensor {tensor.name!r} needs external data file {location!r}, "
                f"which is missing next to the model: {path}"
            )


def external_data(model: Any) -> Iterator[tuple[Any, str]]:
    """(tensor, location relative to the model's folder) of every tensor stored outside
    the model file, subgraphs included ('' when the location is missing)."""
    import onnx

    for tensor in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            yield tensor, next((e.value for e in tensor.external_data if e.key == "location"), "")


def check_onnxruntime_loads(path: Path) -> None:
    """:func:`check_runtime_support` on a model that :func:`check_onnx` accepted; nothing
    when ONNX Runtime is not installed here (its targets then say they are unavailable)."""
    import onnx

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    check_runtime_support(onnx.load(str(path), load_external_data=False), path)


def check_runtime_support(model: Any, path: Path) -> None:
    """Raise InputError when the installed ONNX Runtime cannot load ``model``'s IR
    version, opsets or op domains (asked of ONNX Runtime, before any work)."""
    import onnxruntime as ort

    version = ort.__version__
    known = _ort_ops()
    local_functions = {(f.domain, f.name) for f in model.functions}
    imported = {_domain(o.domain) for o in model.opset_import}
    for node in all_nodes(model.graph):
        domain = _domain(node.domain)
        if (domain, node.op_type) in local_functions:
            continue
        if domain not in {d for d, _ in known}:
            raise InputError(
                f"model uses op domain {domain!r} (op {node.op_type}), which onnxruntime "
                f"{version} does not support: {path}"
            )
        if (domain, node.op_type) not in known:
            raise InputError(
                f"model uses op {node.op_type} of domain {domain!r}, which onnxruntime "
                f"{version} does not know: {path}"
            )
        if domain not in imported:
            raise InputError(f"model uses domain {domain!r} without importing an opset: {path}")
    problem = _ort_opset_problem(model)
    if problem:
        raise InputError(f"onnxruntime {version} cannot load the model ({problem}): {path}")


@dataclass(frozen=True)
class _RawInput:
    name: str
    elem_type: int
    shape: tuple[int | None, ...]
    dim_names: tuple[str | None, ...]


def _layouts(model: Any, outputs: bool = False) -> list[_RawInput]:
    """Graph inputs that are not initializers (or, with ``outputs``, the graph outputs); a
    negative dim (Paddle's -1) is dynamic."""
    initializers = {init.name for init in model.graph.initializer}
    layouts = []
    for value in model.graph.output if outputs else model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None
            for d in tensor.shape.dim
        )
        names = tuple(d.dim_param or None for d in tensor.shape.dim)
        layouts.append(_RawInput(value.name, tensor.elem_type, dims, names))
    return layouts


def _domain(name: str) -> str:
    return "" if name == "ai.onnx" else name


def all_nodes(graph: Any) -> Iterator[Any]:
    """Every node, subgraphs (If, Loop, Scan bodies) included."""
    from onnx import AttributeProto

    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from all_nodes(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from all_nodes(sub)


def _all_tensors(model: Any) -> Iterator[Any]:
    from onnx import AttributeProto

    yield from model.graph.initializer
    for node in all_nodes(model.graph):
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == AttributeProto.GRAPH:
                yield from attr.g.initializer
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from sub.initializer


@cache
def _ort_ops() -> frozenset[tuple[str, str]]:
    """(domain, op type) pairs the installed ONNX Runtime has a schema or kernel for."""
    from onnxruntime.capi import _pybind_state as ort_c

    ops = {(_domain(s.domain), s.name) for s in ort_c.get_all_operator_schema()}
    ops |= {(_domain(k.domain), k.op_name) for k in ort_c.get_all_opkernel_def()}
    return frozenset(ops)


_SUPPORT_TILL = re.compile(r"support for domain (\S+) is till opset (\d+)")


def _ort_opset_problem(model: Any) -> str:
    """ONNX Runtime's own verdict on the model's IR version and opsets, '' when it loads.

    A one-node model stamped with the same IR version and ai.onnx / ai.onnx.ml opsets is
    opened: ONNX Runtime validates those before anything else, in milliseconds.
    """
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from edgeproof.onnx.prep import first_meaningful_line

    opsets = {_domain(o.domain): o.version for o in model.opset_import}
    probe_opsets = [helper.make_opsetid(d, v) for d, v in opsets.items() if d in ("", "ai.onnx.ml")]
    if "" not in opsets:
        probe_opsets.append(helper.make_opsetid("", 13))
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [value], [out])
    probe = helper.make_model(graph, opset_imports=probe_opsets)
    probe.ir_version = model.ir_version
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(
            probe.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        text = str(exc)
        till = _SUPPORT_TILL.search(text)
        if till:
            domain, limit = till.groups()
            used = opsets.get(_domain(domain), opsets.get(domain, "?"))
            return (
                f"opset {used} of domain {domain}; it supports up to opset {limit}, "
                f"onnx {onnx.__version__} knows up to {onnx.defs.onnx_opset_version()}"
            )
        return first_meaningful_line(text) or type(exc).__name__
    return ""


def check_data_matches(inputs: list[InputSpec], data: Dataset, what: str) -> None:
    """Raise InputError when a data file does not fit the model's declared inputs: names,
    dtypes, ranks and every fixed dimension (the item axis may hold any number of items;
    a constant must have the input's shape; a streaming state may be left out)."""
    layout = data.layout
    expected = {spec.name for spec in inputs}
    provided = set(data.inputs) | set(data.constants)
    missing = expected - provided - set(layout.states)
    if provided - expected or missing:
        raise InputError(
            f"{what} data arrays {sorted(provided)} do not match model inputs {sorted(expected)}"
        )
    for spec in inputs:
        constant = spec.name in data.constants
        if spec.name in data.inputs:
            array = layout.to_model(spec.name, data.inputs[spec.name])
        elif constant:
            array = data.constants[spec.name]
        else:
            continue  # a streaming state that starts at zeros
        wrong_dtype = layout.dtype_error(what, spec.name, array.dtype, spec.dtype)
        if wrong_dtype:  # integer data a float input casts on feed is fine
            raise InputError(wrong_dtype)
        if array.ndim != len(spec.shape):
            raise InputError(
                f"{what} data {spec.name!r} has {array.ndim} dims {array.shape}, "
                f"model expects {len(spec.shape)} {_shape(spec.shape)}"
            )
        item_axis = None if constant else layout.item_axis(spec.name)
        for axis, (got, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
            if axis != item_axis and want is not None and got != want:
                raise InputError(
                    f"{what} data {spec.name!r} has shape {array.shape}, model expects "
                    f"{_shape(spec.shape)} (axis {axis} must be {want})"
                )


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
