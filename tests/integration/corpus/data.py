"""Small eval / calibration sets for the corpus models, made from what installed packages
ship: text rendered with matplotlib's DejaVu fonts (OCR), synthetic audio (VAD), English
sentences through the shipped WordPiece vocabulary (transformers). Deterministic: every
builder takes a seed. At most a few hundred items each (the machine is small).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tests.integration.corpus.models import MINILM_TOKENIZER, shipped_path
from tests.integration.corpus.wordpiece import WordPiece

# --- OCR: rendered text ----------------------------------------------------------------

FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")
WORDS = (
    "invoice total 42.50",
    "Edge devices",
    "quality gate",
    "Hello World",
    "ORDER #1187",
    "temperature 21 C",
    "battery low",
    "Main Street 12",
    "model accuracy",
    "shipping label",
    "Total due: $318",
    "press start",
    "Berlin Paris",
    "calibration set",
    "Monday 09:30",
    "warehouse B7",
    "quantize int8",
    "parcel 55 kg",
    "receipt no. 6604",
    "open source",
)
CLS_SHAPE = (3, 48, 192)  # rapidocr's cls_image_shape


@cache
def font_path(name: str) -> Path:
    """A DejaVu font file from matplotlib's data folder (found without importing it)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("matplotlib is not installed: no DejaVu fonts")
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf" / name
    if not path.is_file():
        raise FileNotFoundError(f"matplotlib ships no {name}: {path}")
    return path


def render_line(text: str, font: str, size: int, ink: int = 20, paper: int = 245) -> np.ndarray:
    """One line of dark text on a light background, cropped with a small margin (H, W, 3)."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(font_path(font)), size)
    left, top, right, bottom = face.getbbox(text)
    margin = max(2, size // 6)
    image = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), (paper,) * 3)
    ImageDraw.Draw(image).text((margin - left, margin - top), text, font=face, fill=(ink,) * 3)
    return np.asarray(image)


def cls_input(image: np.ndarray) -> np.ndarray:
    """rapidocr's text-direction preprocessing: height 48, width by aspect ratio up to
    192, scaled to [-1, 1], zero-padded on the right; (3, 48, 192) float32."""
    from PIL import Image

    channels, height, width = CLS_SHAPE
    ratio = image.shape[1] / image.shape[0]
    resized_w = min(width, math.ceil(height * ratio))
    resized = np.asarray(Image.fromarray(image).resize((resized_w, height), Image.BILINEAR))
    scaled = (resized.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    out = np.zeros((channels, height, width), dtype=np.float32)
    out[:, :, :resized_w] = scaled
    return out


def ocr_cls_set(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` text lines, half upright (label 0), half rotated 180 degrees (label 1):
    inputs (n, 3, 48, 192) float32 and int64 labels, in the classifier's own classes."""
    rng = np.random.default_rng(seed)
    inputs, labels = [], []
    for index in range(n):
        text = WORDS[int(rng.integers(len(WORDS)))]
        image = render_line(text, FONTS[index % len(FONTS)], int(rng.integers(22, 40)))
        rotated = index % 2 == 1
        inputs.append(cls_input(np.rot90(image, 2).copy() if rotated else image))
        labels.append(int(rotated))
    return np.stack(inputs), np.asarray(labels, dtype=np.int64)


def ocr_det_set(n: int, seed: int = 0, size: tuple[int, int] = (128, 320)) -> OcrDetSet:
    """``n`` pages of ``size`` (multiples of 32) with one or two lines of text each, and
    the boxes where the text is (for a check of the detector's probability map)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    height, width = size
    pages, boxes = [], []
    for index in range(n):
        page = np.full((height, width, 3), 245, dtype=np.uint8)
        mask = np.zeros((height, width), dtype=bool)
        y = int(rng.integers(4, 16))
        for _ in range(int(rng.integers(1, 3))):
            line = render_line(WORDS[int(rng.integers(len(WORDS)))], FONTS[index % 4], 26)
            scale = min(1.0, (width - 20) / line.shape[1])
            if scale < 1.0:
                new = (int(line.shape[1] * scale), int(line.shape[0] * scale))
                line = np.asarray(Image.fromarray(line).resize(new, Image.BILINEAR))
            h, w = line.shape[:2]
            if y + h > height:
                break
            x = int(rng.integers(4, max(5, width - w - 4)))
            page[y : y + h, x : x + w] = line
            ink = line.min(axis=2) < 128
            rows, cols = np.nonzero(ink)
            mask[y + rows.min() : y + rows.max() + 1, x + cols.min() : x + cols.max() + 1] = True
            y += h + int(rng.integers(8, 24))
        pages.append((page.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5)
        boxes.append(mask)
    return OcrDetSet(np.stack(pages), np.stack(boxes))


@dataclass(frozen=True)
class OcrDetSet:
    """Detector inputs (n, 3, H, W) and the text boxes as a mask (n, H, W)."""

    inputs: np.ndarray
    text_mask: np.ndarray


# --- VAD: synthetic audio --------------------------------------------------------------

SAMPLE_RATE = 16000
CHUNK = 512  # samples per step at 16 kHz (silero-vad's wrapper)
CONTEXT = 64  # samples of the previous chunk prepended to each step
STATE_SHAPE = (2, 1, 128)
_VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410))


def speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced, speech-like signal: a glottal pulse train (pitch 100-200 Hz with drift)
    through three formant resonators that change vowel every 120-200 ms, with a 3-5 Hz
    syllable envelope. float32 in [-1, 1] at 16 kHz."""
    from scipy.signal import lfilter

    total = int(seconds * SAMPLE_RATE)
    t = np.arange(total) / SAMPLE_RATE
    pitch = rng.uniform(100, 200) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = np.cumsum(pitch / SAMPLE_RATE)
    source = np.diff(np.floor(phase), prepend=0.0)  # one impulse per pitch period
    source = lfilter([1.0], [1.0, -0.95], source)  # glottal roll-off
    out = np.zeros(total)
    start = 0
    while start < total:
        length = int(rng.uniform(0.12, 0.2) * SAMPLE_RATE)
        segment = source[start : start + length]
        voiced = np.zeros_like(segment)
        vowel = _VOWELS[int(rng.integers(len(_VOWELS)))]
        for formant, bandwidth in zip(vowel, (80, 100, 120), strict=True):
            r = math.exp(-math.pi * bandwidth / SAMPLE_RATE)
            theta = 2 * math.pi * formant / SAMPLE_RATE
            voiced += lfilter([1 - r], [1, -2 * r * math.cos(theta), r * r], segment)
        out[start : start + length] = voiced
        start += length
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3, 5) * t) ** 2
    out = out * syllables + 0.003 * rng.standard_normal(total)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def silence(seconds: float, rng: np.random.Generator, level: float = 0.001) -> np.ndarray:
    """Room silence: faint white noise."""
    return (level * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def vad_windows(signal: np.ndarray) -> np.ndarray:
    """The model's per-step input: each 512-sample chunk after the 64 samples before it
    (zeros before the start), (steps, 576) float32, as silero-vad's wrapper feeds it."""
    steps = len(signal) // CHUNK
    padded = np.concatenate([np.zeros(CONTEXT, dtype=np.float32), signal[: steps * CHUNK]])
    return np.stack([padded[i * CHUNK : i * CHUNK + CHUNK + CONTEXT] for i in range(steps)])


def vad_stream(session: object, windows: np.ndarray) -> np.ndarray:
    """Speech probability per step, carrying the recurrent state from step to step."""
    state = np.zeros(STATE_SHAPE, dtype=np.float32)
    sr = np.array(SAMPLE_RATE, dtype=np.int64)
    probs = []
    for window in windows:
        prob, state = session.run(None, {"input": window[None], "state": state, "sr": sr})  # type: ignore[attr-defined]
        probs.append(float(prob[0, 0]))
    return np.asarray(probs)


# --- Transformers: sentences -----------------------------------------------------------

# (sentence, its paraphrase): each pair's two sentences share meaning, not words.
PARAPHRASES = (
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch."),
    ("The stock market fell sharply today.", "Share prices dropped a lot this afternoon."),
    ("I need to book a flight to Rome.", "I have to reserve a plane ticket to Italy's capital."),
    ("It is raining heavily outside.", "There is a downpour out there."),
    ("She plays the violin in an orchestra.", "She is a violinist in a symphony."),
    ("The soup is too salty.", "There is far too much salt in this broth."),
    ("My laptop battery died.", "My notebook computer ran out of power."),
    ("The children are playing football in the park.", "Kids kick a soccer ball on the green."),
    ("He fixed the leaking pipe in the kitchen.", "He repaired the kitchen plumbing leak."),
    ("The museum opens at nine in the morning.", "The gallery's doors open at 9 a.m."),
    ("We planted tomatoes in the garden.", "Tomato seedlings went into our vegetable bed."),
    ("The train was delayed by an hour.", "The railway service ran sixty minutes late."),
)
# Other sentences, for calibration sets (no eval item may appear in calibration).
CALIBRATION_SENTENCES = (
    "The weather will be sunny tomorrow.",
    "Please send me the quarterly report.",
    "Our team won the basketball game last night.",
    "The recipe needs two cups of flour.",
    "He is learning to play the guitar.",
    "The bridge was closed for repairs.",
    "A new bakery opened around the corner.",
    "They watched a documentary about whales.",
    "The printer on the second floor is jammed.",
    "She runs five kilometres every morning.",
    "The library extended its opening hours.",
    "Wind turbines turned slowly on the hill.",
)
SEQUENCE = 32


@cache
def minilm_tokenizer() -> WordPiece:
    """The BERT uncased WordPiece vocabulary shipped with the int8 MiniLM's SDK."""
    return WordPiece(shipped_path(MINILM_TOKENIZER))


def sentence_set(length: int = SEQUENCE) -> dict[str, np.ndarray]:
    """Every sentence of :data:`PARAPHRASES`, first sentences then paraphrases, encoded."""
    sentences = [a for a, _ in PARAPHRASES] + [b for _, b in PARAPHRASES]
    return minilm_tokenizer().encode(sentences, length)


def calibration_sentence_set(length: int = SEQUENCE) -> dict[str, np.ndarray]:
    """:data:`CALIBRATION_SENTENCES`, encoded."""
    return minilm_tokenizer().encode(list(CALIBRATION_SENTENCES), length)


def mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence embeddings: token embeddings averaged over the real tokens, L2-normed."""
    weights = mask[..., None].astype(np.float32)
    pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def paraphrase_retrieval(embeddings: np.ndarray) -> float:
    """Share of first sentences whose nearest (cosine) paraphrase is their own."""
    count = len(PARAPHRASES)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = unit[:count] @ unit[count:].T
    return float(np.mean(similarity.argmax(axis=1) == np.arange(count)))


# --- OCR recognition: rendered lines with their characters ----------------------------

REC_SHAPE = (3, 48, 320)  # rapidocr's rec_img_shape (height 48), lines up to 320 wide


def rec_alphabet(model: Path) -> dict[str, int]:
    """PaddleOCR's class id of each character of a recognizer: its ``character`` metadata
    line number + 1 (0 is the CTC blank), and the space after the dictionary."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    chars = meta["character"].splitlines()
    alphabet = {c: i + 1 for i, c in enumerate(chars)}
    alphabet.setdefault(" ", len(chars) + 1)
    return alphabet


def rec_input(image: np.ndarray) -> np.ndarray:
    """rapidocr's recognizer preprocessing: height 48, width by aspect ratio up to 320,
    scaled to [-1, 1], zero-padded on the right; (3, 48, 320) float32."""
    from PIL import Image

    channels, height, width = REC_SHAPE
    resized_w = min(width, math.ceil(height * image.shape[1] / image.shape[0]))
    resized = np.asarray(Image.fromarray(image).resize((resized_w, height), Image.BILINEAR))
    scaled = (resized.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    out = np.zeros((channels, height, width), dtype=np.float32)
    out[:, :, :resized_w] = scaled
    return out


@dataclass(frozen=True)
class OcrRecSet:
    inputs: np.ndarray  # (n, 3, 48, 320) float32
    labels: np.ndarray  # (n, longest) int64 class ids, -1 padded
    fonts: np.ndarray  # (n,) the font of each line: the slices


def ocr_rec_set(alphabet: dict[str, int], n: int, seed: int = 0) -> OcrRecSet:
    """``n`` rendered text lines (a word list, four fonts, sizes 24-40) and their ids."""
    rng = np.random.default_rng(seed)
    inputs, labels, fonts = [], [], []
    for index in range(n):
        text = WORDS[int(rng.integers(len(WORDS)))]
        font = FONTS[index % len(FONTS)]
        inputs.append(rec_input(render_line(text, font, int(rng.integers(24, 41)))))
        labels.append([alphabet[c] for c in text])
        fonts.append(font.removesuffix(".ttf"))
    longest = max(map(len, labels))
    padded = np.full((n, longest), -1, dtype=np.int64)
    for row, ids in enumerate(labels):
        padded[row, : len(ids)] = ids
    return OcrRecSet(np.stack(inputs), padded, np.asarray(fonts))
