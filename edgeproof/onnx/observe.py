"""The model as it really runs: its outputs observed at resolve, not assumed from the graph.

A graph's declared output shapes are often wrong (a CTC recognizer declares ``[1, seqlen]``
and returns ``(T, 1, classes)``) and its first output is not always the one to gate
(skl2onnx's classifier returns ``output_label``, int64 ids, before ``output_probability``).
So, before any work, the FP32 model is run in ONNX Runtime on the first eval item, and on
the first two when it takes batches, in a child process with a time limit
(``python -m edgeproof.onnx.observe``, :mod:`edgeproof.runtime.oneshot`): what it returns
(dtypes, shapes, whether a class output's rows are probabilities) decides each output's
item axis (the axis that grows with the items; for a model fed one item per call, its axis
of size 1) and, for a classifier, what its class output holds. ``model.outputs`` in
params says it where the observation cannot (:func:`observe_outputs` refuses in one line
naming the key); ``model.inputs.<name>.item_axis`` likewise for an input whose batch is
fixed at 1 before a dynamic axis (:func:`settle_inputs`, from the eval file's shapes).
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import ModelConfig
from edgeproof.data.dataset import LabelKind
from edgeproof.data.feed import FeedLayout
from edgeproof.errors import ConfigError, InputError
from edgeproof.onnx.model import DataShapes, feed_layout, graph_signature, item_axis_of

OBSERVE_TIMEOUT_SECONDS = 300.0
_KEY = "params.yaml: model.outputs"


def npz_shapes(path: Path, labels_key: str) -> DataShapes | None:
    """Each array's shape in an ``.npz`` from its header alone (nothing is read), and the
    number of labels; None when the file cannot be read so (the data check says why)."""
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        header = np.lib.format.read_array_header_1_0(fh)
                    else:
                        header = np.lib.format.read_array_header_2_0(fh)
                shapes[info.filename[: -len(".npy")]] = tuple(header[0])
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    labels = shapes.pop(labels_key, None)
    return DataShapes(shapes, None if not labels else labels[0])


def settle_inputs(model: Path, config: ModelConfig, eval_data: Path, labels_key: str) -> FeedLayout:
    """The feed layout with each input's item axis decided by params, the graph and the
    eval file's shapes (ConfigError naming ``model.inputs.<name>.item_axis`` when none
    decides)."""
    return feed_layout(model, config.inputs, config.outputs, npz_shapes(eval_data, labels_key))


@dataclass(frozen=True)
class Observed:
    """One output as the model returned it: dtype, shape for one item (and for two, when
    the model takes batches), and whether its rows are probabilities."""

    name: str
    dtype: np.dtype
    one: tuple[int, ...]
    two: tuple[int, ...] | None
    probabilities: bool


def observe_outputs(
    model: Path,
    config: ModelConfig,
    eval_data: Path,
    labels_key: str,
    label_kind: LabelKind,
    layout: FeedLayout,
    classifier: bool,
    timeout: float = OBSERVE_TIMEOUT_SECONDS,
) -> tuple[FeedLayout, tuple[str, ...]]:
    """``layout`` with its outputs' item axes, gated outputs and class-output kind as the
    model really runs, and warnings (one line each) where that differs from the graph or
    could not be observed. ConfigError naming ``model.outputs`` where neither params nor
    the observation decides."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return layout, ()
    from edgeproof.runtime.oneshot import run_module

    request = {
        "model": str(model),
        "eval": str(eval_data),
        "labels_key": labels_key,
        "label_kind": label_kind,
        "layout": layout.to_json(),
    }
    try:
        reply = run_module(
            "edgeproof.onnx.observe",
            request,
            timeout=timeout,
            label="observing the model's outputs (FP32, ONNX Runtime)",
            error=InputError,
        )
    except InputError as exc:
        return layout, (f"{exc}: the outputs are read as the graph declares them",)
    observed = [
        Observed(
            o["name"],
            np.dtype(o["dtype"]),
            tuple(o["one"]),
            None if o["two"] is None else tuple(o["two"]),
            bool(o["probabilities"]),
        )
        for o in reply["outputs"]
    ]
    return decide_outputs(model, config, layout, observed, classifier)


def decide_outputs(
    model: Path,
    config: ModelConfig,
    layout: FeedLayout,
    observed: list[Observed],
    classifier: bool,
) -> tuple[FeedLayout, tuple[str, ...]]:
    """The outputs' item axes, gated outputs and kinds from params and ``observed``."""
    _, declared_specs = graph_signature(model)
    declared = {spec.name: spec for spec in declared_specs}
    chosen = {o.name: o for o in config.outputs or ()}
    carried = {state.output for state in layout.states.values()}
    axes: dict[str, int | None] = {}
    unresolved: dict[str, str] = {}
    warnings: list[str] = []
    recorded: dict[str, dict[str, Any]] = {}
    for out in observed:
        spec = declared[out.name]
        set_axis = chosen[out.name].item_axis if out.name in chosen else "auto"
        if set_axis != "auto":
            if set_axis is not None and set_axis >= len(out.one):
                raise ConfigError(
                    f"{_KEY}: {out.name!r}: item_axis {set_axis} is out of range: the model "
                    f"returns {_shape(out.one)} for one item"
                )
            axes[out.name] = set_axis
        elif out.name in carried:
            axes[out.name] = layout.output_axis(out.name)
        else:
            axis, why = _observed_axis(out, spec.shape)
            axes[out.name] = axis
            if why:
                unresolved[out.name] = why
        axis = axes[out.name]
        shape = tuple(None if i == axis else d for i, d in enumerate(out.one))
        if out.dtype != spec.dtype or not _agrees(shape, spec.shape):
            recorded[out.name] = {"dtype": str(out.dtype), "shape": list(shape)}
            where = "no item axis" if axis is None else f"items on axis {axis}"
            warnings.append(
                f"model output {out.name!r} is declared {spec.dtype} {_shape(spec.shape)} and "
                f"returns {out.dtype} {_shape(shape)} ({where}, observed): gated as observed"
            )
    if config.outputs is not None:
        gated = [o.name for o in config.outputs]
    else:
        gated = [o.name for o in observed if axes[o.name] is not None or o.name in unresolved]
    for name in gated:
        if name in unresolved:
            raise ConfigError(
                f"{_KEY}: output {name!r} {unresolved[name]}: set its item_axis "
                f"(model.outputs: [{{name: {name}, item_axis: <axis>}}]), or gate other outputs"
            )
        if axes[name] is None:
            raise ConfigError(
                f"{_KEY}: output {name!r} has no item axis (one value per call): it cannot be "
                "gated item by item; name the outputs to gate"
            )
    if not gated:
        raise ConfigError(f"{_KEY}: no output of the model has an item axis: name the outputs")
    kinds = {o.name: o.kind for o in config.outputs or () if o.kind is not None}
    by_name = {o.name: o for o in observed}
    if classifier:
        first = by_name[gated[0]]
        if gated[0] not in kinds:
            if first.dtype.kind in "iub":
                if config.outputs is None:
                    raise ConfigError(
                        f"{_KEY}: the first output {first.name!r} is {first.dtype} labels; name "
                        "the class-score output to gate (model.outputs: [{name: <output>, "
                        "kind: probabilities}])"
                    )
                kinds[first.name] = "labels"
            elif first.probabilities:
                kinds[first.name] = "probabilities"
        _check_class_output(first, axes[first.name], kinds.get(first.name, "logits"))
    output_axes = {name: axis for name, axis in {**layout.output_axes, **axes}.items() if axis}
    settled = replace(
        layout, output_axes=output_axes, outputs=tuple(gated), output_kinds=kinds, observed=recorded
    )
    return settled, tuple(warnings)


def _observed_axis(out: Observed, declared: tuple[int | None, ...]) -> tuple[int | None, str]:
    """(the item axis, '') as observed, or (None, why) when the observation cannot tell."""
    if out.two is not None:
        if len(out.two) != len(out.one):
            return None, f"returns {_shape(out.one)} for one item, {_shape(out.two)} for two"
        grew = [i for i, (a, b) in enumerate(zip(out.one, out.two, strict=True)) if a != b]
        if not grew:
            return None, ""  # the same for one item and two: one value per call
        if len(grew) == 1 and out.two[grew[0]] == 2 * out.one[grew[0]]:
            return grew[0], ""
        return None, f"returns {_shape(out.one)} for one item and {_shape(out.two)} for two"
    ones = [i for i, d in enumerate(out.one) if d == 1]
    guess = item_axis_of(declared)
    if len(declared) == len(out.one) and guess is not None and guess in ones:
        return guess, ""
    if ones:
        return ones[0], ""
    return None, f"returns {_shape(out.one)} for one item: no axis of size 1 carries it"


def _check_class_output(out: Observed, axis: int | None, kind: str) -> None:
    rank = 1 if kind == "labels" else 2
    if len(out.one) != rank:
        what = "class ids (items,)" if kind == "labels" else f"{kind} (items, classes)"
        raise ConfigError(
            f"{_KEY}: a classifier's first gated output {out.name!r} must hold {what}; it "
            f"returns {out.dtype} {_shape(out.one)} for one item (items on axis {axis}): name "
            "the class output first, with its kind"
        )


def _agrees(observed: tuple[int | None, ...], declared: tuple[int | None, ...]) -> bool:
    if len(observed) != len(declared):
        return False
    return all(d is None or o is None or o == d for o, d in zip(observed, declared, strict=True))


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _serve(request: dict[str, Any]) -> dict[str, Any]:
    """Child side: run the FP32 model on the first eval item (and the first two)."""
    import onnxruntime as ort

    from edgeproof.data.dataset import load_dataset
    from edgeproof.data.feed import stream_calls
    from edgeproof.runtime.oneshot import phase

    layout = FeedLayout.from_json(request["layout"])
    data = load_dataset(
        Path(request["eval"]), request["labels_key"], True, request["label_kind"], layout
    )
    phase("load")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        request["model"], sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    phase("run")

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(a) for a in session.run(names, feeds)]

    if layout.states:
        one = next(stream_calls(run, names, iter([data.batch(0, 1)]), layout, None))
    else:
        one = run(data.batch(0, 1))
    two = None
    if layout.max_batch is None and len(data) >= 2:
        two = run(data.batch(0, 2))
    return {
        "outputs": [
            {
                "name": name,
                "dtype": str(a.dtype),
                "one": list(a.shape),
                "two": None if two is None else list(two[i].shape),
                "probabilities": _rows_are_probabilities(a),
            }
            for i, (name, a) in enumerate(zip(names, one, strict=True))
        ]
    }


def _rows_are_probabilities(array: np.ndarray) -> bool:
    """Whether ``array``'s rows (last axis) are non-negative and sum to 1."""
    if array.dtype.kind != "f" or array.ndim == 0 or array.shape[-1] < 2:
        return False
    values = array.astype(np.float64)
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        return False
    return bool(np.allclose(values.sum(axis=-1), 1.0, atol=1e-3))


if __name__ == "__main__":
    from edgeproof.runtime.oneshot import serve

    sys.exit(serve(_serve))
