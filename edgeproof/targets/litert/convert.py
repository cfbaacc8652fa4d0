"""The converter subprocess: ONNX -> SavedModel (onnx2tf) -> TFLite (TFLiteConverter).

Run as ``python -m edgeproof.targets.litert.convert REQUEST.json RESULT.json`` by
``edgeproof.targets.litert.toolchain``, with the toolchain's interpreter (TensorFlow never loads in
the pipeline process). Imports only the standard library, numpy, the toolchain and
``edgeproof.runtime.oneshot`` / ``edgeproof.targets.litert.layout`` (both dependency-free), so a
toolchain environment without edgeproof's other dependencies can run it.

Facts this relies on (onnx2tf 1.28.8, tensorflow 2.21.0, this machine):
- onnx2tf rewrites its input ONNX file in place (shape inference, op renaming): it only
  ever gets a copy, in a scratch folder that is also its working directory.
- onnx2tf downloads sample images from GitHub (``download_test_image_data``) when every
  input is 4-D with a static batch <= 20 and 3 channels (a typical RGB model exported at
  batch 1); offline that is a ConnectionError and the conversion dies. It reads
  ``calibration_image_sample_data_20x128x128x3_float32.npy`` from its working directory
  first, so a seeded uniform [0, 1) file is put there. It is only used for onnx2tf's
  dummy inference (resized to the model's input), never for edgeproof's calibration.
  onnx2tf's own int8 path (``-oiqt``) is never used: without ``-cind`` data it calibrates
  on those downloaded images.
- onnx2tf runs the ``onnxsim`` CLI three times in subprocesses (~2 s each here, the CLI
  imports torch); instead the model is simplified once in-process (``onnxsim.simplify``,
  kept only if its check passes) and onnx2tf is told ``not_use_onnxsim``.
- ``output_signaturedefs`` (``-osd``) gives the SavedModel the ``serving_default``
  signature that ``TFLiteConverter.from_saved_model`` and LiteRT's signature runner use.
- onnx2tf reports errors by printing ``ERROR: ...`` to stdout and raising or calling
  ``sys.exit(1)``: stdout is captured and its last ERROR line is the reason.
- Representative data for full int8 is edgeproof's calibration split in the ONNX layout,
  transposed like the SavedModel's inputs (``layout.layout_perm``), one item per step.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgeproof.runtime.oneshot import ChildFailure, one_line, phase, serve
from edgeproof.targets.litert.layout import layout_perm, match_inputs

SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
METHODS = ("fp32", "dynamic-range", "full-int8")
# what onnx2tf prints after any op fails: advice and context, never the cause
_ONNX2TF_HINTS = (
    "The trace log is below",
    "input_onnx_file_path:",
    "onnx_op_name:",
    "Read this and deal with it",
    "Alternatively, if the input OP",
    "If the input OP of ONNX",
    "Also, for models that include",
)


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Convert as the request says; what was built, with timings and tool versions."""
    phase("import tensorflow")
    import tensorflow as tf

    saved_model = Path(request["saved_model"])
    reply: dict[str, Any] = {"versions": {"tensorflow": tf.__version__}, "builds": []}
    if request.get("onnx"):
        reply |= _onnx2tf(Path(request["onnx"]), saved_model, request.get("batch_size"))
        reply["versions"] |= reply.pop("tool_versions")
    for build in request.get("builds", []):
        reply["builds"].append(_build(saved_model, build, request["inputs"]))
    return reply


def _onnx2tf(model: Path, saved_model: Path, batch_size: int | None) -> dict[str, Any]:
    """ONNX file -> SavedModel folder with the ``serving_default`` signature."""
    import numpy as np

    phase("import onnx2tf")
    import onnx2tf

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeproof-onnx2tf-") as scratch:
        work = Path(scratch) / "model.onnx"
        shutil.copyfile(model, work)
        simplified = _simplify(work)
        rng = np.random.default_rng(0)
        np.save(Path(scratch) / SAMPLE_FILE, rng.random((20, 128, 128, 3), dtype=np.float32))
        if saved_model.exists():
            shutil.rmtree(saved_model)
        phase("onnx2tf")
        printed = io.StringIO()
        cwd = os.getcwd()
        os.chdir(scratch)
        try:
            with contextlib.redirect_stdout(printed):
                onnx2tf.convert(
                    input_onnx_file_path=str(work),
                    output_folder_path=str(saved_model),
                    output_signaturedefs=True,
                    not_use_onnxsim=True,
                    batch_size=batch_size,
                    verbosity="error",
                )
        except (Exception, SystemExit) as exc:
            raise ChildFailure(
                f"onnx2tf cannot convert the model: {_reason(printed, exc)}"
            ) from exc
        finally:
            os.chdir(cwd)
            sys.stderr.write(printed.getvalue())
    if not (saved_model / "saved_model.pb").exists():
        raise ChildFailure(f"onnx2tf wrote no SavedModel: {_reason(printed, None)}")
    for leftover in saved_model.glob("*.tflite"):  # onnx2tf's own float32/float16 files
        leftover.unlink()
    return {
        "onnx2tf_seconds": time.perf_counter() - started,
        "simplified": simplified,
        "tool_versions": {"onnx2tf": onnx2tf.__version__},
    }


def _simplify(path: Path) -> str:
    """onnxsim once, in place, if installed and its check passes; what happened, one line."""
    phase("onnxsim")
    try:
        import onnx
        import onnxsim
    except ImportError:
        return "skipped: onnxsim not installed"
    try:
        model, ok = onnxsim.simplify(onnx.load(str(path)))
    except Exception as exc:  # onnxsim raises many types; onnx2tf also just goes on
        return f"skipped: {one_line(str(exc) or type(exc).__name__, 160)}"
    if not ok:
        return "skipped: onnxsim's check failed"
    onnx.save(model, str(path))
    return "yes"


def _reason(printed: io.StringIO, exc: BaseException | None) -> str:
    """onnx2tf's last specific ``ERROR:`` line (its generic hints skipped), else the
    exception's first line; with the failing ONNX op's name when onnx2tf printed it."""
    said = [
        one_line(ln.split("ERROR:", 1)[1])
        for ln in printed.getvalue().splitlines()
        if "ERROR:" in ln
    ]
    op = next((ln.split(":", 1)[1].strip() for ln in said if ln.startswith("onnx_op_name:")), None)
    specific = [ln for ln in said if not ln.startswith(_ONNX2TF_HINTS)]
    if specific:
        reason = specific[-1]
    elif exc is not None:
        reason = one_line(f"{type(exc).__name__}: {_cause_of(exc)}")
    else:
        reason = "(no message)"
    return reason + (f" (ONNX op {op})" if op else "")


def _cause_of(exc: BaseException) -> str:
    """The exception's message; for Keras' "Exception encountered when calling layer ..."
    wrapper, the line after it (the actual cause) too."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling layer"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else ""


def _build(
    saved_model: Path, build: dict[str, Any], inputs: list[dict[str, Any]]
) -> dict[str, Any]:
    """One TFLite file from the SavedModel: fp32, dynamic-range or full int8."""
    import tensorflow as tf

    method = build["method"]
    if method not in METHODS:
        raise ChildFailure(f"unknown conversion method {method!r} (known: {', '.join(METHODS)})")
    phase(f"convert {method}")
    started = time.perf_counter()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if method != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if method == "full-int8":
        converter.representative_dataset = _calibration_feeds(
            saved_model, Path(build["calibration"]), inputs
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        flatbuffer = converter.convert()
    except Exception as exc:  # ConverterError and friends: a long multi-line MLIR message
        raise ChildFailure(f"TFLite converter ({method}): {one_line(str(exc))}") from exc
    out = Path(build["out"])
    out.write_bytes(flatbuffer)
    return {
        "method": method,
        "out": str(out),
        "bytes": len(flatbuffer),
        "seconds": time.perf_counter() - started,
    }


def _calibration_feeds(
    saved_model: Path, data: Path, inputs: list[dict[str, Any]]
) -> Callable[[], Iterator[dict[str, Any]]]:
    """The representative dataset: one {signature key: NHWC item} per calibration item."""
    import numpy as np
    import tensorflow as tf

    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    specs = signature.structured_input_signature[1]  # key -> TensorSpec (name = ONNX name)
    key_by_name = {spec.name or key: key for key, spec in specs.items()}
    names = match_inputs([i["name"] for i in inputs], list(key_by_name))
    layouts = {}
    for item in inputs:
        spec = specs[key_by_name[names[item["name"]]]]
        perm = layout_perm(item["shape"], spec.shape.as_list())
        if perm is None:
            raise ChildFailure(
                f"input {item['name']!r}: ONNX shape {item['shape']} does not map to the "
                f"SavedModel's {spec.shape.as_list()}"
            )
        layouts[item["name"]] = (key_by_name[names[item["name"]]], perm, spec.dtype.as_numpy_dtype)
    with np.load(data, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in layouts}
    count = len(next(iter(arrays.values())))

    def dataset() -> Iterator[dict[str, Any]]:
        for i in range(count):
            yield {
                key: np.ascontiguousarray(arrays[name][i : i + 1].transpose(perm)).astype(dtype)
                for name, (key, perm, dtype) in layouts.items()
            }

    return dataset


if __name__ == "__main__":
    sys.exit(serve(handle))
