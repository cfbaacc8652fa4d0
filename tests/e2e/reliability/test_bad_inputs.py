"""The catalogue of bad inputs: each one refused by ``edgeproof run`` before anything is written.

Every case breaks a valid tiny project (model, data, params, or the command line), runs the
real CLI in a subprocess and checks: the exit code (2: error), exactly one stderr line
``edgeproof: error: ...`` naming the problem, no traceback, and nothing changed: every file
of the project (including a pre-existing MLflow store with a champion) is byte-identical
afterwards, no new file or folder (no ``reports/``, ``mlartifacts/`` content, model files)
appeared, and no ``edgeproof-*`` temporary folder was left behind.

Catalogue (id: expected message):

model
  model-missing             model file not found
  model-random-bytes        model is not a valid ONNX file (Unable to parse proto ...)
  model-truncated           model is not a valid ONNX file (Unable to parse proto ...)
  model-empty               model is not a valid ONNX file (... ir_version ...)
  model-is-directory        model path is a directory, not a file
  model-path-escapes        model path escapes the project folder (``../``)
  model-absolute-outside    model path escapes the project folder (``/`` path)
  model-symlink-outside     model path escapes the project folder (symlink out)
  model-symlink-loop        model path cannot be resolved (Symlink loop ...)
  model-input-shape         eval data 'input' has shape ..., model expects (?, 1, 8, 8)
  model-input-dtype         eval data 'input' has dtype float32, model expects float64
  model-input-name-config   model.input_name: 'pixels' is not an input of the model
  model-opset-too-new       onnxruntime ... cannot load the model (opset 27 of domain ai.onnx ...)
  model-no-outputs          model declares no outputs (nothing to evaluate)
  model-zipmap-output       model output 'output_probability' is a sequence of map(...)
                            (made by ZipMap, ai.onnx.ml), not a tensor ... zipmap': False
  model-inputs-unknown      model.inputs.rate: not an input of the model
  model-inputs-bad-value    model.inputs.input.value: has shape (), the model's input is ...
data
  eval-missing              data file not found
  eval-is-directory         data path is a directory, not a file
  eval-path-escapes         eval data path escapes the project folder
  eval-not-a-zip            data file is not an .npz (zip) archive: truncated, or another format
  eval-truncated-zip        data file is not an .npz (zip) archive: truncated, ...
  eval-npy-not-npz          data file is not an .npz (zip) archive (a bare .npy file)
  eval-member-not-npy       data file member 'input' is not a NumPy .npy array
  eval-zip-bomb             data file expands to more than 2048 MiB (declared unpacked size)
  eval-object-array         data file is not a readable .npz (Object arrays cannot be loaded
                            when allow_pickle=False); its pickle would create a file: none is
  eval-dtype                eval data 'input' has dtype float64, model expects float32
  eval-array-name           eval data arrays ['pixels'] do not match model inputs ['input']
  eval-nan                  data array 'input' contains NaN or inf (data gate off)
  eval-inf                  data array 'input' contains NaN or inf (data gate off)
  eval-no-rows              data file has no rows
  eval-labels-missing       eval data has no labels array
  eval-labels-out-of-range  eval labels outside 0..9 (e.g. 10) (data gate off)
  eval-labels-float         labels must be a 1-D integer array
  eval-length-mismatch      data arrays differ in length
  eval-only-labels          data file has no input arrays
  calibration-missing       data file not found: .../calibration.npz
  calibration-not-a-zip     data file is not an .npz (zip) archive: .../calibration.npz
  calibration-shape         calibration data 'input' has shape
  calibration-nan           data array 'input' contains NaN or inf: .../calibration.npz
  calibration-no-rows       data file has no rows: .../calibration.npz
params
  params-missing            params file not found
  params-is-directory       cannot read params file ([Errno 21] Is a directory)
  params-not-utf8           cannot read params file ('utf-8' codec can't decode ...)
  params-invalid-yaml       invalid YAML at line 2
  params-empty              expected a mapping at the top level
  params-list               expected a mapping at the top level
  unknown-top-level-key     modle: unknown key
  unknown-nested-key        gates.latency.min_sppedup: unknown key
  unknown-target-section    targets.tpu: unknown key
  negative-min-speedup      gates.latency.min_speedup: Input should be greater than 0
  negative-accuracy-drop    gates.accuracy.max_drop_abs: ... greater than or equal to 0
  fraction-above-one        gates.fidelity.min_top1_agreement: ... less than or equal to 1
  wrong-type-int            measure.min_samples: Input should be a valid integer
  wrong-type-section        targets: Input should be a valid dictionary
  wrong-enum                gates.on_inconclusive: Input should be 'fail', 'warn' or 'rerun'
  same-aliases              registry: champion_alias and challenger_alias must differ
  value-min-above-max       data.checks: value_min must not exceed value_max
  class-shares-crossed      data.checks: min_class_share must not exceed max_class_share
  min-samples-above-max     measure: min_samples must not exceed max_samples
  warmup-above-max          measure: warmup_runs must not exceed max_warmup_runs
  model-name-placeholder    registry.model_name: ... only the placeholders {model} and {target}
  duplicate-recipe          targets.onnxruntime-cpu: recipes: duplicate name 'fp32'
  num-classes-one           model.num_classes: Input should be greater than or equal to 2
  accuracy-control-without-max-drop
                            targets.openvino-cpu.recipes.ac: nncf-accuracy-control needs
                            max_drop (gates.accuracy.max_drop_abs is off)
  olive-pass-type-not-a-name
                            targets.olive.recipes.0.passes.0.type: String should match pattern
  olive-recipe-without-passes
                            targets.olive.recipes.0.passes: List should have at least 1 item
targets
  junit-folder-missing      --junit: folder does not exist: no/such
  unknown-target-option     unknown target 'tpu' (known: onnxruntime-cpu, openvino-cpu, ...)
  disabled-target           (top level): no target is enabled
  unavailable-runtime       no selected target can run here (onnxruntime-cpu: onnxruntime is
                            not installed ...)  (onnxruntime made unimportable)

Faults that need a running pipeline (MLflow unreachable, read-only, full disk, the data
gate, secrets) are in ``test_faults.py``.

Language models (``tests/e2e/test_language_model.py``, same checks: exit 2, one line,
every file unchanged)
  corrupt-model             model is not a readable GGUF file (GGUF magic invalid)
  unknown-type              unknown llama.cpp quantization type 'Q9_9'; known: ...
  onnx-target               target 'onnxruntime-cpu' needs an ONNX model; model.task is
                            'language_model'
and, while running, a corrupt or a truncated candidate GGUF fails alone with a one-line
reason naming the phase (load) and the signal or llama.cpp's message. TFLite / Edge TPU
(``tests/integration/targets``): a model the converter cannot handle, a conversion that
hangs, a failed ``edgetpu_compiler`` and a missing delegate library each fail with one line.
"""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeproof.targets.registry import known_targets
from tests.e2e.reliability.project import (
    assert_refused,
    edgeproof,
    leftovers,
    read_params,
    set_param,
    snapshot,
    write_params,
)
from tests.helpers import make_tiny_cnn, skl2onnx_outputs, write_npz

Breaker = Callable[[Path], None]
PWNED = "PWNED-by-unpickling"  # the file an unpickled payload would create


@dataclass(frozen=True)
class Case:
    """One bad input: how to break a valid project, and how edgeproof must refuse it."""

    id: str
    breaks: Breaker
    message: str  # regex searched in the one ``edgeproof: error:`` line
    exit_code: int = 2
    args: tuple[str, ...] = ()  # extra ``edgeproof run`` arguments
    env: dict[str, str] = field(default_factory=dict)


# --- ways to break a project ---------------------------------------------------------


def param(dotted: str, value: object) -> Breaker:
    """Set one key of params.yaml."""
    return lambda project: set_param(project, dotted, value)


def params_text(text: str | bytes) -> Breaker:
    """Replace params.yaml with raw text (or bytes)."""

    def breaks(project: Path) -> None:
        path = project / "params.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")

    return breaks


def remove_key(dotted: str) -> Breaker:
    """Delete one key of params.yaml."""

    def breaks(project: Path) -> None:
        params = read_params(project)
        *sections, key = dotted.split(".")
        node = params
        for section in sections:
            node = node[section]
        del node[key]
        write_params(project, params)

    return breaks


def both(*breakers: Breaker) -> Breaker:
    """Apply several breakers in turn."""

    def breaks(project: Path) -> None:
        for breaker in breakers:
            breaker(project)

    return breaks


def images(n: int = 64, size: int = 16, dtype: type = np.float32) -> np.ndarray:
    """n deterministic images N x 1 x size x size in [0, 1)."""
    return np.random.default_rng(7).random((n, 1, size, size)).astype(dtype)


def labels(n: int = 64, top: int = 10) -> np.ndarray:
    return (np.arange(n) % top).astype(np.int64)


def npz(split: str, make: Callable[[], dict[str, np.ndarray]]) -> Breaker:
    """Rewrite data/<split>.npz with the arrays ``make()`` returns."""
    return lambda project: write_npz(project / "data" / f"{split}.npz", **make())


def with_value(value: float, split: str = "eval") -> Breaker:
    """A data file whose item 3 holds ``value`` (NaN, inf)."""

    def make() -> dict[str, np.ndarray]:
        x = images(64 if split == "eval" else 32)
        x[3, 0, 5, 5] = value
        return {"input": x, "labels": labels(len(x))}

    return npz(split, make)


def zip_members(split: str, members: dict[str, bytes]) -> Breaker:
    """data/<split>.npz as a zip archive holding ``members`` (name -> raw bytes)."""

    def breaks(project: Path) -> None:
        with zipfile.ZipFile(project / "data" / f"{split}.npz", "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)

    return breaks


def declared_size(split: str, size: int) -> Breaker:
    """data/<split>.npz whose zip directory declares its first member ``size`` bytes
    unpacked (a zip bomb as the reader sees it, without writing gigabytes)."""

    def breaks(project: Path) -> None:
        path = project / "data" / f"{split}.npz"
        data = bytearray(path.read_bytes())
        entry = data.rindex(b"PK\x01\x02")  # last central directory entry; +24: unpacked size
        data[entry + 24 : entry + 28] = size.to_bytes(4, "little")
        path.write_bytes(bytes(data))

    return breaks


def file_bytes(rel: str, make: Callable[[Path], bytes]) -> Breaker:
    """Replace file ``rel`` with ``make(old path)``."""

    def breaks(project: Path) -> None:
        path = project / rel
        path.write_bytes(make(path))

    return breaks


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in NumPy's .npy format (what ``np.save`` writes)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def random_bytes(n: int) -> Callable[[Path], bytes]:
    return lambda _: np.random.default_rng(3).bytes(n)


def first_half(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) // 2]


def symlink(rel: str, target: str) -> Breaker:
    """Make ``rel`` a symlink to ``target`` (relative targets stay relative)."""
    return lambda project: (project / rel).symlink_to(target)


def replace_with_dir(rel: str) -> Breaker:
    """Replace file ``rel`` by a folder of the same name."""

    def breaks(project: Path) -> None:
        (project / rel).unlink()
        (project / rel).mkdir()

    return breaks


def model_expecting(size: int) -> Breaker:
    """The model file rebuilt for size x size input (the data stays 16 x 16)."""

    def breaks(project: Path) -> None:
        make_tiny_cnn(project / "model.onnx", size=size)

    return breaks


def model_input_double(project: Path) -> None:
    """The model file declaring a float64 input (the data stays float32)."""
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(project / "model.onnx"))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    onnx.save(model, str(project / "model.onnx"))


def model_edit(edit: Callable[[Any], object]) -> Breaker:
    """The model file loaded, changed by ``edit`` and saved back."""

    def breaks(project: Path) -> None:
        import onnx

        model = onnx.load(str(project / "model.onnx"))
        edit(model)
        onnx.save(model, str(project / "model.onnx"))

    return breaks


def _stamp_opset(model: Any, version: int) -> None:
    """The default domain's opset import set to ``version`` (newer than the runtime's)."""
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = version


class CreatesFileWhenUnpickled:
    """A pickle payload: unpickling it calls ``open(path, "w")``, creating ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def object_array(project: Path) -> None:
    """eval.npz holding an object array whose unpickling would create ``PWNED``."""
    payload = np.array([CreatesFileWhenUnpickled(project / PWNED)] * 64, dtype=object)
    write_npz(project / "data" / "eval.npz", input=payload, labels=labels())


def onnxruntime_unimportable(project: Path) -> None:
    """A ``shim/`` package shadowing onnxruntime, as on a runner without that runtime."""
    shim = project / "shim" / "onnxruntime"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        'raise ImportError("No module named onnxruntime on this runner")\n', encoding="utf-8"
    )


GATE_OFF = param("data.checks.enabled", False)  # values and labels then checked at resolve
ORT = "targets.onnxruntime-cpu"

CATALOGUE = [
    # --- model
    Case("model-missing", param("model.path", "missing.onnx"), r"model file not found: .*missing"),
    Case(
        "model-random-bytes",
        file_bytes("model.onnx", random_bytes(5000)),
        r"model is not a valid ONNX file \(Unable to parse proto",
    ),
    Case(
        "model-truncated",
        file_bytes("model.onnx", first_half),
        r"model is not a valid ONNX file \(Unable to parse proto",
    ),
    Case(
        "model-empty",
        file_bytes("model.onnx", lambda _: b""),
        r"model is not a valid ONNX file \(.*ir_version",
    ),
    Case(
        "model-is-directory",
        replace_with_dir("model.onnx"),
        r"model path is a directory, not a file: .*model\.onnx",
    ),
    Case(
        "model-path-escapes",
        param("model.path", "../model.onnx"),
        r"model path escapes the project folder .*: \.\./model\.onnx",
    ),
    Case(
        "model-absolute-outside",
        param("model.path", "/etc/hostname"),
        r"model path escapes the project folder .*: /etc/hostname",
    ),
    Case(
        "model-symlink-outside",
        both(symlink("linked.onnx", "/etc/hostname"), param("model.path", "linked.onnx")),
        r"model path escapes the project folder .*: linked\.onnx",
    ),
    Case(
        "model-symlink-loop",
        both(symlink("loop.onnx", "loop.onnx"), param("model.path", "loop.onnx")),
        r"model path cannot be resolved \(Symlink loop .*\): loop\.onnx",
    ),
    Case(
        "model-input-shape",
        model_expecting(8),
        r"eval data 'input' has shape \(64, 1, 16, 16\), model expects \(\?, 1, 8, 8\)",
    ),
    Case(
        "model-input-dtype",
        model_input_double,
        r"eval data 'input' has dtype float32, model expects float64",
    ),
    Case(
        "model-input-name-config",
        param("model.input_name", "pixels"),
        r"model\.input_name: 'pixels' is not an input of the model",
    ),
    Case(
        "model-opset-too-new",
        model_edit(lambda m: _stamp_opset(m, 27)),
        r"onnxruntime \S+ cannot load the model \(opset 27 of domain ai\.onnx; it supports up "
        r"to opset \d+",
    ),
    Case(
        "model-no-outputs",
        model_edit(lambda m: m.graph.ClearField("output")),
        r"model declares no outputs \(nothing to evaluate\): .*model\.onnx",
    ),
    Case(  # skl2onnx's default classifier outputs: a label, then ZipMap's list of maps
        "model-zipmap-output",
        model_edit(skl2onnx_outputs),
        r"model output 'output_probability' is a sequence of map\(int64 -> tensor\(float32\)\) "
        r"\(made by ZipMap, ai\.onnx\.ml\), not a tensor: .*'zipmap': False",
    ),
    Case(
        "model-inputs-unknown",
        param("model.inputs", {"rate": {"value": 16000}}),
        r"params\.yaml: model\.inputs\.rate: not an input of the model \(inputs: input\)",
    ),
    Case(
        "model-inputs-bad-value",
        param("model.inputs", {"input": {"value": 1.0}}),
        r"model\.inputs\.input\.value: has shape \(\), the model's input is \(\?, 1, 16, 16\)",
    ),
    # --- eval data
    Case("eval-missing", param("data.eval", "data/nope.npz"), r"data file not found: .*nope\.npz"),
    Case(
        "eval-is-directory",
        replace_with_dir("data/eval.npz"),
        r"data path is a directory, not a file: .*eval\.npz",
    ),
    Case(
        "eval-path-escapes",
        param("data.eval", "../../eval.npz"),
        r"eval data path escapes the project folder",
    ),
    Case(
        "eval-not-a-zip",
        file_bytes("data/eval.npz", random_bytes(4096)),
        r"data file is not an \.npz \(zip\) archive: truncated, or another format: .*eval\.npz",
    ),
    Case(
        "eval-truncated-zip",
        file_bytes("data/eval.npz", first_half),
        r"data file is not an \.npz \(zip\) archive: truncated, or another format: .*eval\.npz",
    ),
    Case(
        "eval-npy-not-npz",
        file_bytes("data/eval.npz", lambda _: npy_bytes(images())),
        r"data file is not an \.npz \(zip\) archive: truncated, or another format: .*eval\.npz",
    ),
    Case(
        "eval-member-not-npy",
        zip_members("eval", {"input.npy": b"not an array", "labels.npy": b""}),
        r"data file member 'input' is not a NumPy \.npy array: .*eval\.npz",
    ),
    Case(
        "eval-zip-bomb",
        declared_size("eval", 0xFFFF_FFF0),
        r"data file expands to more than 2048 MiB: .*eval\.npz",
    ),
    Case(
        "eval-object-array",
        object_array,
        r"data file is not a readable \.npz \(Object arrays cannot be loaded when "
        r"allow_pickle=False\)",
    ),
    Case(
        "eval-dtype",
        npz("eval", lambda: {"input": images(dtype=np.float64), "labels": labels()}),
        r"eval data 'input' has dtype float64, model expects float32",
    ),
    Case(
        "eval-array-name",
        npz("eval", lambda: {"pixels": images(), "labels": labels()}),
        r"eval data arrays \['pixels'\] do not match model inputs \['input'\]",
    ),
    Case(
        "eval-nan",
        both(GATE_OFF, with_value(np.nan)),
        r"data array 'input' contains NaN or inf: .*eval\.npz",
    ),
    Case(
        "eval-inf",
        both(GATE_OFF, with_value(np.inf)),
        r"data array 'input' contains NaN or inf: .*eval\.npz",
    ),
    Case(
        "eval-no-rows",
        npz("eval", lambda: {"input": images(0), "labels": labels(0)}),
        r"data file has no rows: .*eval\.npz",
    ),
    Case(
        "eval-labels-missing",
        npz("eval", lambda: {"input": images()}),
        r"eval data has no labels array \(a classifier needs them\)",
    ),
    Case(
        "eval-labels-out-of-range",
        both(GATE_OFF, npz("eval", lambda: {"input": images(), "labels": labels() + 3})),
        r"eval labels outside 0\.\.9 \(e\.g\. 1[0-2]\)",
    ),
    Case(
        "eval-labels-float",
        npz("eval", lambda: {"input": images(), "labels": labels().astype(np.float32)}),
        r"labels must be a 1-D integer array, got float32",
    ),
    Case(
        "eval-length-mismatch",
        npz("eval", lambda: {"input": images(), "labels": labels(63)}),
        r"data arrays differ in length",
    ),
    Case(
        "eval-only-labels",
        npz("eval", lambda: {"labels": labels()}),
        r"data file has no input arrays \(only 'labels'\)",
    ),
    # --- calibration data
    Case(
        "calibration-missing",
        lambda project: (project / "data" / "calibration.npz").unlink(),
        r"data file not found: .*calibration\.npz",
    ),
    Case(
        "calibration-not-a-zip",
        file_bytes("data/calibration.npz", random_bytes(2048)),
        r"data file is not an \.npz \(zip\) archive: .*calibration\.npz",
    ),
    Case(
        "calibration-shape",
        npz("calibration", lambda: {"input": images(32, size=12), "labels": labels(32)}),
        r"calibration data 'input' has shape \(32, 1, 12, 12\)",
    ),
    Case(
        "calibration-nan",
        both(GATE_OFF, with_value(np.nan, split="calibration")),
        r"data array 'input' contains NaN or inf: .*calibration\.npz",
    ),
    Case(
        "calibration-no-rows",
        npz("calibration", lambda: {"input": images(0), "labels": labels(0)}),
        r"data file has no rows: .*calibration\.npz",
    ),
    # --- params file
    Case(
        "params-missing",
        lambda project: None,
        r"nope\.yaml: params file not found",
        args=("--params", "nope.yaml"),
    ),
    Case(
        "params-is-directory",
        lambda project: None,
        r"cannot read params file \(\[Errno 21\] Is a directory",
        args=("--params", "data"),
    ),
    Case(
        "params-not-utf8",
        params_text(b"model:\n  name: \xff\xfe\n"),
        r"cannot read params file \('utf-8' codec can't decode",
    ),
    Case("params-invalid-yaml", params_text("model: [\n"), r"params\.yaml: invalid YAML at line 2"),
    Case("params-empty", params_text(""), r"params\.yaml: expected a mapping at the top level"),
    Case(
        "params-list",
        params_text("- model\n- data\n"),
        r"params\.yaml: expected a mapping at the top level",
    ),
    Case("unknown-top-level-key", param("modle.name", "tiny"), r"params\.yaml: modle: unknown key"),
    Case(
        "unknown-nested-key",
        param("gates.latency.min_sppedup", 1.5),
        r"params\.yaml: gates\.latency\.min_sppedup: unknown key",
    ),
    Case("unknown-target-section", param("targets.tpu", {}), r"targets\.tpu: unknown key"),
    Case(
        "negative-min-speedup",
        param("gates.latency.min_speedup", -1.2),
        r"gates\.latency\.min_speedup: Input should be greater than 0",
    ),
    Case(
        "negative-accuracy-drop",
        param("gates.accuracy.max_drop_abs", -0.01),
        r"gates\.accuracy\.max_drop_abs: Input should be greater than or equal to 0",
    ),
    Case(
        "fraction-above-one",
        param("gates.fidelity.min_top1_agreement", 98),
        r"gates\.fidelity\.min_top1_agreement: Input should be less than or equal to 1",
    ),
    Case(
        "wrong-type-int",
        param("measure.min_samples", "many"),
        r"measure\.min_samples: Input should be a valid integer",
    ),
    Case(
        "wrong-type-section",
        param("targets", ["onnxruntime-cpu"]),
        r"targets: Input should be a valid dictionary",
    ),
    Case(
        "wrong-enum",
        param("gates.on_inconclusive", "ignore"),
        r"gates\.on_inconclusive: Input should be 'fail', 'warn' or 'rerun'",
    ),
    Case(
        "same-aliases",
        param("registry.challenger_alias", "champion"),
        r"registry: champion_alias and challenger_alias must differ",
    ),
    Case(
        "value-min-above-max",
        both(param("data.checks.value_min", 1.0), param("data.checks.value_max", 0.0)),
        r"data\.checks: value_min must not exceed value_max",
    ),
    Case(
        "class-shares-crossed",
        both(param("data.checks.min_class_share", 0.3), param("data.checks.max_class_share", 0.1)),
        r"data\.checks: min_class_share must not exceed max_class_share",
    ),
    Case(
        "min-samples-above-max",
        both(param("measure.min_samples", 500), param("measure.max_samples", 100)),
        r"measure: min_samples must not exceed max_samples",
    ),
    Case(
        "warmup-above-max",
        both(param("measure.warmup_runs", 50), param("measure.max_warmup_runs", 10)),
        r"measure: warmup_runs must not exceed max_warmup_runs",
    ),
    Case(
        "model-name-placeholder",
        param("registry.model_name", "{model}-{tgt}"),
        r"registry\.model_name: '\{model\}-\{tgt\}' may use only the placeholders "
        r"\{model\} and \{target\}",
    ),
    Case(
        "duplicate-recipe",
        param(f"{ORT}.recipes", [{"name": "fp32", "method": "dynamic"}]),
        r"targets\.onnxruntime-cpu: recipes: duplicate name 'fp32'",
    ),
    Case(
        "num-classes-one",
        param("model.num_classes", 1),
        r"model\.num_classes: Input should be greater than or equal to 2",
    ),
    Case(
        "accuracy-control-without-max-drop",
        both(
            param("gates.accuracy.max_drop_abs", None),
            param(
                "targets.openvino-cpu",
                {"recipes": [{"name": "ac", "method": "nncf-accuracy-control"}]},
            ),
        ),
        r"targets\.openvino-cpu\.recipes\.ac: nncf-accuracy-control needs max_drop",
    ),
    Case(
        "olive-pass-type-not-a-name",
        param("targets.olive", {"recipes": [{"name": "x", "passes": [{"type": "a; rm -rf"}]}]}),
        r"targets\.olive\.recipes\.0\.passes\.0\.type: String should match pattern",
    ),
    Case(
        "olive-recipe-without-passes",
        param("targets.olive", {"recipes": [{"name": "x", "passes": []}]}),
        r"targets\.olive\.recipes\.0\.passes: List should have at least 1 item",
    ),
    # --- targets
    Case(
        "junit-folder-missing",
        lambda project: None,
        r"--junit: folder does not exist: no/such",
        args=("--junit", "no/such/junit.xml"),
    ),
    Case(
        "unknown-target-option",
        lambda project: None,
        r"unknown target 'tpu' \(known: " + re.escape(", ".join(known_targets())) + r"\)",
        args=("--target", "tpu"),
    ),
    Case(
        "disabled-target",
        param(f"{ORT}.enabled", False),
        r"params\.yaml: \(top level\): no target is enabled",
        args=("--target", "onnxruntime-cpu"),
    ),
    Case(
        "unavailable-runtime",
        onnxruntime_unimportable,
        r"no selected target can run here \(onnxruntime-cpu: onnxruntime is not installed",
        env={"PYTHONPATH": "shim"},
    ),
]


@pytest.fixture
def broken_project(project: Path, seeded_store: Path) -> Path:
    """The tiny project with an MLflow store (and a champion) from an earlier run."""
    shutil.copy(seeded_store / "mlflow.db", project / "mlflow.db")
    shutil.copytree(seeded_store / "mlartifacts", project / "mlartifacts")
    return project


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_bad_input_is_refused_and_changes_nothing(
    case: Case, broken_project: Path, prefect_home: Path, scratch: Path
) -> None:
    case.breaks(broken_project)
    before = snapshot(broken_project)
    done = edgeproof(
        broken_project, *case.args, prefect_home=prefect_home, scratch=scratch, env=case.env
    )
    assert_refused(done, case.exit_code, case.message)
    assert snapshot(broken_project) == before, "the refused run changed the project folder"
    assert not (broken_project / PWNED).exists()  # no data file was ever unpickled
    assert leftovers(scratch) == []


def test_the_catalogue_is_large_and_unique() -> None:
    ids = [c.id for c in CATALOGUE]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


def test_the_pickle_payload_would_run_if_unpickled(tmp_path: Path) -> None:
    """Proves the eval-object-array case can fail: allow_pickle=True runs the payload."""
    object_array(tmp_path)
    assert not (tmp_path / PWNED).exists()
    with np.load(tmp_path / "data" / "eval.npz", allow_pickle=True) as data:
        data["input"]
    assert (tmp_path / PWNED).exists()
