"""NNCF int8 of an OpenVINO IR: post-training quantization and accuracy control.

Facts this relies on (docs/architecture.md, "Runtime facts", this machine):
- NNCF post-training quantization of the IR (``nncf.quantize``) gave 3.8x over ORT FP32.
- NNCF accuracy control only *logs* that it could not reach ``max_drop`` and still returns
  a model: edgeproof re-scores the result on the calibration split itself and a miss
  becomes the candidate's ``failure`` (the gate fails it with that reason).
A quantized model is saved with its weights as they come out (``compress_to_fp16=False``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.dataset import Dataset
from edgeproof.errors import InputError
from edgeproof.targets.openvino_cpu.config import OpenVinoRecipe


def nncf_ptq(
    src: Path,
    out: Path,
    spec: OpenVinoRecipe,
    calibration: Dataset,
    ignored: Sequence[str] = (),
) -> None:
    """NNCF post-training int8 of an IR file, saved with its weights as they come out;
    ``ignored``: ops (by name) left in float (NNCF's ``ignored_scope``)."""
    import nncf
    import openvino as ov

    items = list(calibration.head(spec.calibration_samples).batches(1))
    scope = {"ignored_scope": nncf.IgnoredScope(names=list(ignored))} if ignored else {}
    quantized = nncf.quantize(
        ov.Core().read_model(str(src)),
        nncf.Dataset(items),
        preset=_preset(spec),
        subset_size=len(items),
        fast_bias_correction=spec.fast_bias_correction,
        **scope,
    )
    ov.save_model(quantized, str(out), compress_to_fp16=False)


def nncf_accuracy_control(
    src: Path, out: Path, spec: OpenVinoRecipe, calibration: Dataset
) -> str | None:
    """``nncf.quantize_with_accuracy_control`` of an IR file; why it missed max_drop, or None.

    NNCF validates on the calibration split (it needs labels there); the eval split stays
    untouched for edgeproof's own, independent verdict. The returned model is also re-scored
    here with the same top-1 metric at f32 (NNCF compiles with the CPU's default precision,
    bf16 here): a miss by either NNCF's account (its log) or edgeproof's is a failure, and
    the reason quotes both.
    """
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    if calibration.labels is None:
        raise InputError(
            "nncf-accuracy-control needs labels in the calibration data "
            f"(key 'labels'): {calibration.source}"
        )
    max_drop = spec.max_drop if spec.max_drop is not None else 0.0  # Params fills it in
    subset = calibration.head(spec.calibration_samples)
    labelled = list(zip(subset.batches(1), subset.labels.tolist(), strict=True))
    restorer = AdvancedAccuracyRestorerParameters()
    if spec.max_iterations is not None:
        restorer = AdvancedAccuracyRestorerParameters(max_num_iterations=spec.max_iterations)
    model = ov.Core().read_model(str(src))
    with _nncf_log() as log:
        quantized = nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(labelled, lambda item: item[0]),
            nncf.Dataset(labelled),
            _top1,
            max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            preset=_preset(spec),
            subset_size=len(labelled),
            fast_bias_correction=spec.fast_bias_correction,
            advanced_accuracy_restorer_parameters=restorer,
        )
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    before = _top1(_compile_f32(model), labelled)[0]
    after = _top1(_compile_f32(quantized), labelled)[0]
    nncf_missed = any("could not achieve the required accuracy drop" in m for m in log)
    if before - after <= max_drop + 1e-12 and not nncf_missed:
        return None
    who = "NNCF reports it could not achieve it" if nncf_missed else "NNCF reported success"
    return (
        f"NNCF accuracy control did not reach max_drop {max_drop * 100:.2f} pt ({who}; "
        f"edgeproof re-check at f32 on {len(labelled)} calibration items: top-1 "
        f"{before * 100:.2f}% -> {after * 100:.2f}%, drop {(before - after) * 100:.2f} pt)"
    )


def _top1(compiled: Any, items: Iterable[tuple[dict[str, np.ndarray], int]]) -> tuple:
    """NNCF's validation_fn: top-1 accuracy, and per-item correctness for its ranking."""
    correct = [float(np.argmax(compiled(x)[0]) == y) for x, y in items]
    return float(np.mean(correct)), correct


def _compile_f32(model: Any) -> Any:
    import openvino as ov

    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


@contextmanager
def _nncf_log() -> Iterator[list[str]]:
    """Collect what NNCF logs (its accuracy-control outcome exists only as a log line);
    meanwhile its own stdout handler shows only warnings (the outcome is in the report)."""
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect(logging.INFO)
    logger = logging.getLogger("nncf")
    own = [(h, h.level) for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    for stream, _ in own:
        stream.setLevel(max(stream.level, logging.WARNING))
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        for stream, level in own:
            stream.setLevel(level)


def _preset(spec: OpenVinoRecipe) -> Any:
    import nncf

    return {
        "performance": nncf.QuantizationPreset.PERFORMANCE,
        "mixed": nncf.QuantizationPreset.MIXED,
    }[spec.preset]
