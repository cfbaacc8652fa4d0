"""Project folders for ``edgeproof run`` on the corpus models, as a user would write them.

``python -m tests.integration.corpus.project OUT`` writes ``OUT/<model>/`` for each corpus model:
``model.onnx`` (a copy), ``data/eval.npz``, ``data/calibration.npz`` in edgeproof's data
format (one array per model input, items on axis 0) and a ``params.yaml`` with every ONNX
target and a short measurement. The streaming VAD feeds its sample rate as a constant and
its recurrent state carried from call to call (``model.inputs``), and is gated on its own
speech decisions (examples/metrics/vad_decisions.py).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tests.helpers import ROOT
from tests.integration.corpus import data
from tests.integration.corpus.models import CORPUS, CorpusModel, model_path

METRICS = ROOT / "examples" / "metrics"
TARGETS: dict[str, Any] = {
    "onnxruntime-cpu": {
        "threads": 1,
        "recipes": [
            {"name": "dynamic-int8", "method": "dynamic"},
            {"name": "static-qdq", "method": "static", "calibration_samples": 16},
        ],
    },
    "openvino-cpu": {
        "threads": 1,
        "recipes": [{"name": "nncf-int8", "method": "nncf-ptq", "calibration_samples": 16}],
    },
    "olive": {
        "threads": 1,
        "recipes": [
            {
                "name": "static-qdq",
                "passes": [
                    {
                        "type": "OnnxStaticQuantization",
                        "config": {"quant_format": "QDQ", "calibrate_method": "MinMax"},
                    }
                ],
                "calibration_samples": 16,
            }
        ],
    },
    "tflite-cpu": {"threads": 1, "recipes": [{"name": "dynamic-range", "method": "dynamic-range"}]},
}
MEASURE = {
    "warmup_runs": 3,
    "max_warmup_runs": 20,
    "min_samples": 60,
    "max_samples": 80,  # a p90 CI at 99% needs >= 51
    "block_size": 10,
    "max_seconds": 3,
    "throughput_runs": 2,
    "throughput_batch": 4,
    "eval_batch": 8,
    "bootstrap_resamples": 200,
}


def splits(model: CorpusModel) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]:
    """(eval arrays, calibration arrays, task) for one corpus model."""
    if model.name == "ppocr-cls":
        x, y = data.ocr_cls_set(200, seed=10)
        _, first = np.unique(x.reshape(len(x), -1), axis=0, return_index=True)
        keep = np.sort(first)  # distinct items only: the data gate refuses leaked ones
        x, y = x[keep], y[keep]
        return (
            {"x": x[:100], "labels": y[:100]},
            {"x": x[100:124], "labels": y[100:124]},
            ("classification"),
        )
    if model.name == "ppocr-rec":
        lines = data.ocr_rec_set(data.rec_alphabet(model_path(model)), 96, seed=15)
        _, first = np.unique(lines.inputs.reshape(len(lines.inputs), -1), axis=0, return_index=True)
        keep = np.sort(first)  # distinct items only: the data gate refuses leaked ones
        x, labels, fonts = lines.inputs[keep], lines.labels[keep], lines.fonts[keep]
        return (
            {"x": x[:48], "labels": labels[:48], "slice": fonts[:48]},
            {"x": x[48:64]},
            "raw",
        )
    if model.name == "ppocr-det":
        return (
            {"x": data.ocr_det_set(16, seed=12).inputs},
            {"x": data.ocr_det_set(8, seed=13).inputs},
            "raw",
        )
    if model.name == "silero-vad":
        eval_set = vad_clips(4, seed=14)
        calib = vad_clips(2, seed=15)
        return (
            {"input": eval_set.windows, "labels": eval_set.speech, "stream": eval_set.streams},
            {"input": calib.windows},  # the states: carried by the FP32 model at calibration
            "raw",
        )
    encoded, calib = data.sentence_set(), data.calibration_sentence_set()
    if model.name == "minilm-l3":  # no token_type_ids input
        encoded.pop("token_type_ids")
        calib.pop("token_type_ids")
    return encoded, calib, "embedding"


@dataclass(frozen=True)
class VadClips:
    """Streamed audio clips: the model's windows, a clip id and a speech label per window."""

    windows: np.ndarray
    streams: np.ndarray
    speech: np.ndarray


def vad_clips(clips: int, seed: int) -> VadClips:
    """``clips`` clips of 0.5 s of silence then 1 s of speech-like audio, windowed as
    silero-vad's wrapper streams them."""
    rng = np.random.default_rng(seed)
    windows, streams, speech = [], [], []
    onset = int(0.5 * data.SAMPLE_RATE)
    for clip in range(clips):
        signal = np.concatenate([data.silence(0.5, rng), data.speech_like(1.0, rng)])
        steps = data.vad_windows(signal)
        middle = np.arange(len(steps)) * data.CHUNK + data.CHUNK // 2
        windows.append(steps)
        streams.append(np.full(len(steps), clip))
        speech.append((middle >= onset).astype(np.int64))
    return VadClips(np.concatenate(windows), np.concatenate(streams), np.concatenate(speech))


def write_project(model: CorpusModel, folder: Path) -> Path:
    """Write one project folder; returns its params.yaml."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path(model), folder / "model.onnx")
    eval_set, calib, task = splits(model)
    np.savez(folder / "data" / "eval.npz", **eval_set)
    np.savez(folder / "data" / "calibration.npz", **calib)
    params: dict[str, Any] = {
        "model": {"name": model.name, "path": "model.onnx", "task": task},
        "data": {
            "eval": "data/eval.npz",
            "calibration": "data/calibration.npz",
            "checks": {"min_eval_rows": 8, "min_calibration_rows": 4},
        },
        "targets": TARGETS,
        "measure": MEASURE,
        "tracking": {"uri": "sqlite:///mlflow.db", "artifact_location": "mlartifacts"},
    }
    if task == "classification":
        params["model"]["num_classes"] = 2
    if model.name == "silero-vad":  # streamed, gated on its speech decisions
        shutil.copyfile(METRICS / "vad_decisions.py", folder / "vad_decisions.py")
        params["model"]["metric"] = {
            "function": "vad_decisions.py:speech_decision_correct",
            "name": "vad-accuracy",
        }
        params["model"]["inputs"] = {
            "sr": {"value": 16000},
            "state": {"carried_from": "stateN"},
        }
        params["gates"] = {"metric": {"max_drop_abs": 0.05, "max_drop_rel": None}}
        ort = TARGETS["onnxruntime-cpu"]  # its compute sits in If bodies: quantize them too
        subgraphs = {"name": "dynamic-int8-subgraphs", "method": "dynamic", "subgraphs": True}
        params["targets"] = {
            **TARGETS,
            "onnxruntime-cpu": {**ort, "recipes": [*ort["recipes"], subgraphs]},
        }
    if model.name == "ppocr-rec":  # gated on the character error rate, lower is better
        shutil.copyfile(METRICS / "ocr_cer.py", folder / "ocr_cer.py")
        params["model"]["metric"] = {
            "function": "ocr_cer.py:character_error_rate",
            "name": "cer",
            "higher_is_better": False,
        }
        params["gates"] = {  # the FP32 model reads every line: CER 0, so absolute limits
            "metric": {
                "max_drop_abs": 0.02,
                "max_drop_rel": None,
                "max_worst_slice_drop_abs": 0.05,
                "max_worst_slice_drop_rel": None,
            }
        }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def main(out: Path) -> None:
    for model in CORPUS:
        print(write_project(model, out / model.name))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
