"""Draft of the ``mlx`` target (Apple MLX via mlx-lm) for ``task: language_model``, and its
config section; to be moved onto the target plug-in shape.

- The baseline is the user's Hugging Face-layout folder (config.json + model*.safetensors)
  at its stored precision, checked in pure Python (``hf_model.check_hf_model``: a corrupt
  safetensors file or config is a one-line ``InputError`` before anything is written) and
  hard-linked into the work folder.
- Each recipe is one MLX quantization (``edgeproof.mlx.quantize``), made in a subprocess.
- Nothing here imports ``mlx_lm`` (it lowers the open-file limit when imported) and no MLX
  model is loaded in this process: measurement runs in one-shot subprocesses
  (``edgeproof.mlx.harness``), never through ``open_session``.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, model_validator

from edgeproof.config import MIN_TOKEN_TIMINGS, StrictModel, TargetCommon
from edgeproof.data import Dataset
from edgeproof.errors import InputError
from edgeproof.mlx.hf_model import check_hf_model, link_or_copy
from edgeproof.mlx.quantize import MIXED, check_spec
from edgeproof.records import Candidate
from edgeproof.targets.base import Availability, RecipeTarget, Session, fresh_dir

NAME = "mlx"
BASELINE = "baseline"


class MlxRecipe(StrictModel):
    """One MLX affine quantization: ``bits`` (2, 3, 4, 5, 6, 8) in groups of ``group_size``
    (32, 64, 128); or ``mixed``, one of mlx-lm's mixed recipes (mixed_2_6, mixed_3_4,
    mixed_3_6, mixed_4_6), whose low width is then ``bits`` (given or not). ``dtype``: cast
    the float weights to it before quantizing (None keeps the stored precision); on MLX's
    Linux CPU backend quantized matmuls are fast only in float32 (see
    ``edgeproof.mlx.quantize``)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    bits: Literal[2, 3, 4, 5, 6, 8] | None = None
    group_size: Literal[32, 64, 128] = 64
    mixed: Literal["mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"] | None = None
    dtype: Literal["float32", "float16", "bfloat16"] | None = None

    @model_validator(mode="after")
    def _bits_or_mixed(self) -> MlxRecipe:
        if self.bits is None and self.mixed is None:
            raise ValueError("a recipe needs bits, or a mixed recipe")
        check_spec(self.bits, self.group_size, self.mixed)  # ValueError on a mismatch
        return self

    @property
    def low_bits(self) -> int:
        """Bits of most weights (a mixed recipe's low width)."""
        return MIXED[self.mixed][0] if self.mixed else int(self.bits or 0)


class MlxTargetConfig(TargetCommon):
    """The ``mlx`` target: a Hugging Face-layout llama folder and its MLX quantizations, run
    with mlx-lm on ``device`` (``cpu``; ``gpu`` is Metal on Apple silicon). Speed is timed
    as ``llama-bench`` does (see ``LlamaCppTargetConfig``): ``pp_tokens`` prompt tokens in
    one batch and ``tg_tokens`` single-token decodes, ``repetitions`` each after
    ``warmup``, in ``rounds`` fresh processes per candidate interleaved with the baseline's.
    """

    work_pool: str = "edge-laptop-cpu"
    device: Literal["cpu", "gpu"] = "cpu"
    recipes: list[MlxRecipe] = Field(default_factory=list)
    pp_tokens: Annotated[int, Field(ge=1)] = 128
    tg_tokens: Annotated[int, Field(ge=1)] = 32
    warmup: Annotated[int, Field(ge=0)] = 1
    repetitions: Annotated[int, Field(ge=2)] = 5
    rounds: Annotated[int, Field(ge=2)] = 4
    timeout_seconds: PositiveFloat = 300.0  # per MLX subprocess

    @model_validator(mode="after")
    def _unique_recipe_names(self) -> MlxTargetConfig:
        names = [r.name for r in self.recipes]
        for name in {n for n in names if names.count(n) > 1} | ({BASELINE} & set(names)):
            raise ValueError(f"recipe name {name!r} is used twice (baseline is reserved)")
        return self

    @model_validator(mode="after")
    def _enough_token_timings(self) -> MlxTargetConfig:
        timed = self.rounds * self.repetitions * self.tg_tokens
        if timed < MIN_TOKEN_TIMINGS:
            raise ValueError(
                f"rounds x repetitions x tg_tokens = {timed} per-token timings; at least "
                f"{MIN_TOKEN_TIMINGS} are needed for latency percentiles with CIs"
            )
        return self


def mlx_availability() -> Availability:
    """Whether MLX's CPU backend and mlx-lm are installed here (without importing mlx-lm)."""
    try:
        import mlx.core as mx
    except ImportError as exc:
        return Availability(False, f"mlx is not installed (pip install 'mlx[cpu]'): {exc}")
    if importlib.util.find_spec("mlx_lm") is None:
        return Availability(False, "mlx-lm is not installed (pip install mlx-lm)")
    try:
        mx.default_device()
    except Exception as exc:  # e.g. no usable backend
        return Availability(False, f"mlx has no usable device ({exc})")
    version = f"mlx {metadata.version('mlx')}, mlx-lm {metadata.version('mlx-lm')}"
    return Availability(True, runtime_version=version)


def _precision(spec: MlxRecipe, stored: str) -> str:
    """e.g. ``q4-g64``, ``mixed_4_6-g64``, ``q4-g64-f32`` (cast to float32 first)."""
    name = f"{spec.mixed}-g{spec.group_size}" if spec.mixed else stored
    short = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
    return f"{name}-{short[spec.dtype]}" if spec.dtype else name


class MlxLm(RecipeTarget[MlxTargetConfig]):
    """The ``mlx`` target (language models only)."""

    name = NAME

    def available(self) -> Availability:
        return mlx_availability()

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        info = check_hf_model(model)  # InputError before anything is written
        out = fresh_dir(workdir / BASELINE)
        files = link_or_copy(info.files, out)
        return Candidate(
            target=NAME,
            name=BASELINE,
            files=files,
            recipe={
                "method": "none",
                "architecture": info.config["model_type"],
                "dtype": info.precision.upper(),
                "n_params": info.n_params,
                "bits_per_weight": round(info.bits_per_weight, 3),
            },
            precision=info.precision,
            is_baseline=True,
        )

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        from edgeproof.mlx.quantize import quantize

        spec = self._recipes[recipe]
        source = baseline.model_file.parent
        if not source.is_dir():
            raise InputError(f"baseline folder not found: {source}")
        result = quantize(
            source,
            fresh_dir(workdir / recipe) / "model",
            bits=spec.bits,
            group_size=spec.group_size,
            mixed=spec.mixed,
            dtype=spec.dtype,
            device=self.config.device,
            threads=self.config.threads,
            timeout=self.config.timeout_seconds,
        )
        info = result.info
        return Candidate(
            target=NAME,
            name=recipe,
            files=info.files,
            recipe={
                "method": "mlx_lm.quantize_model",
                "mode": "affine",
                "bits": spec.low_bits,
                "group_size": spec.group_size,
                "mixed": spec.mixed,
                "dtype": spec.dtype,
                "quantized_layers": result.run.quantized_layers,
                "float_layers": result.run.float_layers,
                "quantize_seconds": round(result.run.seconds, 3),
                "n_params": info.n_params,
                "bits_per_weight": round(info.bits_per_weight, 3),
            },
            precision=_precision(spec, info.precision),
        )

    def open_session(self, candidate: Candidate, threads: int) -> Session:
        raise NotImplementedError(
            "mlx candidates are measured in MLX subprocesses (edgeproof.mlx.harness), "
            "not through a Session"
        )
