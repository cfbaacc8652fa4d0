"""MLX quantization of a Hugging Face-layout llama folder into a new folder with its own
config.json (mlx-lm's ``quantization`` section), as ``mlx_lm.convert -q`` writes it.

Affine quantization (mlx-lm's default mode): ``bits`` in 2, 3, 4, 5, 6, 8 per weight in
groups of ``group_size`` (32, 64, 128) input values, each group with a scale and a bias
(so 4 bits at group 64 is 4.5 bits per weight). Mixed precision is mlx-lm's own recipes
(``mixed_2_6``, ``mixed_3_4``, ``mixed_3_6``, ``mixed_4_6``: the low bits everywhere, the
high bits for v_proj and down_proj of some layers and for lm_head, like llama.cpp's
Q4_K_M), so ``bits`` is the recipe's low width.

``dtype`` casts the float weights before quantizing (``mlx_lm.convert --dtype``): the
scales, biases and activations then have that type. It matters on MLX's Linux CPU
backend, whose quantized matmul is fast only in float32: measured on this project's
runner (64 x 256 by 256 x 768), 29 ms in float32, 234 ms in bfloat16, 1.3 s in float16,
against 16-22 ms for the dense float matmul. A float16 model quantized as stored is
therefore ~50x slower than its baseline there; on Apple silicon (Metal) it is not.

The baseline folder is checked (``hf_model.check_hf_model``) before anything is written;
the worker writes into a temporary folder next to ``out``, which is checked again and only
then renamed to ``out``: a failure leaves no output folder behind.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from edgeproof.targets.mlx.hf_model import HFModelInfo, check_hf_model
from edgeproof.targets.mlx.runner import QuantizeRun, quantize_folder

BITS = (2, 3, 4, 5, 6, 8)
GROUP_SIZES = (32, 64, 128)
DTYPES = ("float32", "float16", "bfloat16")
MIXED = {"mixed_2_6": (2, 6), "mixed_3_4": (3, 4), "mixed_3_6": (3, 6), "mixed_4_6": (4, 6)}


def check_spec(bits: int | None, group_size: int, mixed: str | None) -> int:
    """The recipe's (low) bit width; ``ValueError`` naming what is not supported."""
    if group_size not in GROUP_SIZES:
        raise ValueError(f"group_size must be one of {GROUP_SIZES}, got {group_size}")
    if mixed is not None:
        if mixed not in MIXED:
            raise ValueError(f"mixed must be one of {', '.join(MIXED)}, got {mixed!r}")
        low = MIXED[mixed][0]
        if bits is not None and bits != low:
            raise ValueError(f"{mixed} quantizes to {low} bits (and 6 or 4), not {bits}")
        return low
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits}")
    return bits


@dataclass(frozen=True)
class MlxQuantized:
    """A quantized folder and what it holds."""

    run: QuantizeRun
    info: HFModelInfo


def quantize(
    baseline: Path,
    out: Path,
    *,
    bits: int | None,
    group_size: int = 64,
    mixed: str | None = None,
    dtype: str | None = None,
    device: str = "cpu",
    threads: int = 2,
    timeout: float = 600.0,
) -> MlxQuantized:
    """Quantize the folder ``baseline`` into the folder ``out`` (replaced if present)."""
    low = check_spec(bits, group_size, mixed)
    if dtype not in (None, *DTYPES):
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    check_hf_model(baseline)  # InputError before anything is written
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        run = quantize_folder(
            baseline,
            tmp,
            bits=low,
            group_size=group_size,
            mixed=mixed,
            dtype=dtype,
            device=device,
            threads=threads,
            timeout=timeout,
        )
        check_hf_model(tmp, allow_quantized=True)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return MlxQuantized(
        run=QuantizeRun(
            path=out,
            seconds=run.seconds,
            bits_per_weight=run.bits_per_weight,
            quantized_layers=run.quantized_layers,
            float_layers=run.float_layers,
            versions=run.versions,
        ),
        info=check_hf_model(out, allow_quantized=True),
    )
