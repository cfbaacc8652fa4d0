"""The ``edgetpu`` target: real conversion to full int8, a recorded compiler, no device.

Neither ``edgetpu_compiler`` nor ``libedgetpu`` exists on this machine (nor in any package
registry), so a stand-in compiler on PATH prints a recorded ``-s`` log and copies the model,
exactly as far as the real one would go without a device: the int8 baseline is built (from
calibration data, in ``optimize``), "compiled", its log parsed into the recipe, the CPU
baseline measured, and the TPU candidate fails to load with the delegate library's name.
The real compiler and device are exercised only where they exist.
"""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeproof.data.dataset import load_dataset
from edgeproof.evaluate.scores import score_classifier
from edgeproof.measure.harness import measure_target
from edgeproof.records import Candidate
from edgeproof.targets.edgetpu.target import EdgeTpu, EdgeTpuTargetConfig
from edgeproof.targets.litert.compiler_log import parse_compiler_log
from edgeproof.targets.litert.edgetpu_compiler import CompileError
from tests.helpers import FAST_MEASURE, ROOT, first_output, measure_job_for

LOGS = ROOT / "tests" / "unit" / "tflite" / "logs"
# the default library name, unless a runner really has it (then one that surely is absent)
LIBRARY = "libedgetpu.so.1" if ctypes.util.find_library("edgetpu") is None else "libabsent.so.1"
CONFIG = EdgeTpuTargetConfig(threads=1, calibration_samples=16, delegate_library=LIBRARY)


def _fake_compiler(folder: Path, log: str, exit_code: int = 0) -> Path:
    """An ``edgetpu_compiler`` for ``-s -o OUTDIR MODEL`` that prints a recorded log and,
    when it "succeeds", writes the model unchanged as ``OUTDIR/<stem>_edgetpu.tflite``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "edgetpu_compiler"
    copy = 'cp "$4" "$3/$(basename "$4" .tflite)_edgetpu.tflite"' if exit_code == 0 else ":"
    script.write_text(
        f'#!/bin/sh\ncat "{LOGS / log}"\n{copy}\nexit {exit_code}\n', encoding="utf-8"
    )
    script.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def built(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Candidate]:
    """Baseline then the ``edgetpu`` recipe, as ``build_candidates`` calls them."""
    work = tmp_path_factory.mktemp("edgetpu")
    bin_dir = _fake_compiler(work / "bin", "cpu_fallback.txt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
        target = EdgeTpu(CONFIG)
        base = target.baseline(tiny_model, work)
        assert not base.model_file.exists()  # needs calibration data: built by optimize
        tpu = target.optimize("edgetpu", base, load_dataset(tiny_data["calibration"]), work)
    return {"cpu-int8": base, "edgetpu": tpu}


def test_compiled_candidate_carries_the_compiler_op_coverage(built: dict[str, Candidate]) -> None:
    base, tpu = built["cpu-int8"], built["edgetpu"]
    assert base.is_baseline and base.precision == "int8" and base.model_file.is_file()
    assert base.recipe["batch"] == 1 and base.recipe["calibration_samples"] == 16
    assert tpu.model_file.name == "model_edgetpu.tflite"
    assert (tpu.model_file.parent / "edgetpu_compiler.out").is_file()
    log = parse_compiler_log((LOGS / "cpu_fallback.txt").read_text(encoding="utf-8"))
    assert tpu.recipe["op_coverage"] == log.to_record()
    assert tpu.recipe["op_coverage"]["first_fallback"].startswith("SOFTMAX (")


def test_int8_baseline_measures_on_cpu_and_the_tpu_fails_naming_the_library(
    built: dict[str, Candidate], tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    base = built["cpu-int8"]
    [tensor] = Interpreter(model_path=str(base.model_file)).get_input_details()
    assert tensor["dtype"] == np.int8 and list(tensor["shape_signature"]) == [1, 16, 16, 1]

    job = measure_job_for(tiny_data, tmp_path, "edgetpu", CONFIG)
    got = measure_target(base, [built["edgetpu"]], job, FAST_MEASURE)
    assert set(got.raw) == {"cpu-int8"}
    session = got.raw["cpu-int8"].environment["session"]
    assert session["delegate"] is None and session["input_types"] == {"input": "int8"}
    error = got.errors["edgetpu"]
    assert f"edgetpu delegate {LIBRARY} cannot be loaded" in error
    assert LIBRARY in error.split("cannot be loaded", 1)[1]  # ctypes' own message names it too

    eval_data = load_dataset(tiny_data["eval"])
    onnx = ort.InferenceSession(str(tiny_model)).run(None, {"input": eval_data.inputs["input"]})[0]
    scores = score_classifier("cpu-int8", first_output(got.outputs["cpu-int8"]), onnx, None)
    assert scores.agree.mean() > 0.8


def test_a_compiler_failure_is_a_one_line_error(
    built: dict[str, Candidate], tiny_data: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    bin_dir = _fake_compiler(tmp_path / "bin", "failed_interpreter.txt", exit_code=1)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    calibration = load_dataset(tiny_data["calibration"])
    with pytest.raises(CompileError) as caught:
        EdgeTpu(CONFIG).optimize("edgetpu", built["cpu-int8"], calibration, tmp_path)
    assert str(caught.value) == (
        "edgetpu_compiler failed (exit code 1): Compilation failed: Model failed in Tflite "
        "interpreter. Please ensure model can be loaded/run in Tflite interpreter. (ERROR: "
        "Attempting to use a delegate that only supports static-sized tensors with a graph "
        "that has dynamic-sized tensors.)"
    )


def test_without_the_compiler_the_target_says_why(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    got = EdgeTpu(CONFIG).available()
    assert not got.ok and got.reason == "Edge TPU compiler 'edgetpu_compiler' not on PATH"


def test_with_a_compiler_but_no_delegate_library_the_target_says_why(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("PATH", f"{_fake_compiler(tmp_path / 'bin', 'all_mapped.txt')}:/usr/bin")
    got = EdgeTpu(CONFIG).available()
    assert not got.ok
    assert got.reason == (
        f"edgetpu delegate {LIBRARY} cannot be loaded "
        f"({LIBRARY}: cannot open shared object file: No such file or directory)"
    )


def test_a_baseline_given_calibration_data_is_built_at_once(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    """Ready for ``Target.baseline`` receiving the calibration split (see the target's notes)."""
    calibration = load_dataset(tiny_data["calibration"])
    base = EdgeTpu(CONFIG).baseline(tiny_model, tmp_path, calibration)
    assert base.model_file.is_file() and base.size_bytes() < 40_000


HARDWARE = EdgeTpu(EdgeTpuTargetConfig()).available()


@pytest.mark.skipif(not HARDWARE.ok, reason=f"no Edge TPU on this runner: {HARDWARE.reason}")
def test_on_a_real_edge_tpu(tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path) -> None:
    config = EdgeTpuTargetConfig(threads=1, calibration_samples=16)
    target = EdgeTpu(config)
    base = target.baseline(tiny_model, tmp_path)
    tpu = target.optimize("edgetpu", base, load_dataset(tiny_data["calibration"]), tmp_path)
    assert tpu.recipe["op_coverage"]["ops_total"] > 0
    got = measure_target(
        base, [tpu], measure_job_for(tiny_data, tmp_path, "edgetpu", config), FAST_MEASURE
    )
    assert got.errors == {}
    assert got.raw["edgetpu"].environment["session"]["delegate"] == "edgetpu"
