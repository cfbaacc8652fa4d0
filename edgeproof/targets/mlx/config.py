"""The params section of the ``mlx`` target and its recipes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from edgeproof.config import StrictModel
from edgeproof.measure.token_harness import TokenTimingConfig
from edgeproof.targets.mlx.quantize import MIXED, check_spec

NAME = "mlx"
BASELINE = "baseline"


def default_recipes() -> list[dict[str, Any]]:
    """The quantizations most teams try first with MLX: 8-bit and 4-bit (``mlx_lm.convert
    -q``'s default) in groups of 64, at the stored precision."""
    return [
        {"name": "q8-g64", "bits": 8, "group_size": 64},
        {"name": "q4-g64", "bits": 4, "group_size": 64},
    ]


class MlxRecipe(StrictModel):
    """One MLX affine quantization: ``bits`` (2, 3, 4, 5, 6, 8) in groups of ``group_size``
    (32, 64, 128); or ``mixed``, one of mlx-lm's mixed recipes (mixed_2_6, mixed_3_4,
    mixed_3_6, mixed_4_6), whose low width is then ``bits`` (given or not). ``dtype``: cast
    the float weights to it before quantizing (None keeps the stored precision); on MLX's
    Linux CPU backend quantized matmuls are fast only in float32 (see
    ``edgeproof.targets.mlx.quantize``)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = Field(
        description="The candidate's name, unique within the target and not the baseline's."
    )
    bits: Literal[2, 3, 4, 5, 6, 8] | None = Field(
        None,
        description="Bits per weight; with `mixed`, its low width. A recipe needs `bits` or "
        "`mixed`.",
    )
    group_size: Literal[32, 64, 128] = Field(
        64, description="Weights per quantization group (one scale and bias each)."
    )
    mixed: Literal["mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"] | None = Field(
        None, description="One of mlx-lm's mixed-precision recipes; null: uniform `bits`."
    )
    dtype: Literal["float32", "float16", "bfloat16"] | None = Field(
        None,
        description="Cast the float weights to this before quantizing; null keeps the "
        "stored precision (MLX's Linux CPU backend is fast only in float32).",
    )

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


class MlxTargetConfig(TokenTimingConfig):
    """The ``mlx`` target: the model's Hugging Face-layout copy (``hf_model``, a folder with
    config.json and safetensors, relative to params.yaml: the same weights as the GGUF) and
    its MLX quantizations, run with mlx-lm on ``device`` (``cpu``; ``gpu`` is Metal on
    Apple silicon). Speed is timed as ``llama-bench`` does (``TokenTimingConfig``)."""

    BASELINE_NAME: ClassVar[str] = BASELINE

    work_pool: str = Field(
        "edge-laptop-cpu",
        description="The Prefect work pool of the device that measures this target; at most "
        "one measurement at a time runs per pool (tag `edgeproof-device:<work_pool>`).",
    )
    device: Literal["cpu", "gpu"] = Field(
        "cpu", description="MLX's device: `cpu`, or `gpu` (Metal on Apple silicon)."
    )
    hf_model: Path = Field(
        description="The model's Hugging Face-layout copy (a folder with config.json and "
        "safetensors, the same weights as the GGUF), relative to params.yaml."
    )
    recipes: list[MlxRecipe] = Field(
        default_factory=default_recipes,
        validate_default=True,
        description="The MLX quantizations, each one candidate beside the `baseline`. Left "
        "out: 8-bit and 4-bit in groups of 64; `[]`: the baseline only.",
    )

    def with_project_paths(self, resolve: Callable[[Path, str], Path]) -> MlxTargetConfig:
        """``hf_model`` as a checked project path."""
        return self.model_copy(update={"hf_model": resolve(self.hf_model, "mlx hf_model")})
