"""The params section of the ``llama-cpp`` target and its recipes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator

from edgeproof.config import StrictModel
from edgeproof.measure.token_harness import TokenTimingConfig

NAME = "llama-cpp"
BASELINE = "baseline"


def default_recipes() -> list[dict[str, Any]]:
    """The quantizations most teams try first with llama.cpp: Q8_0 and Q4_K_M."""
    return [{"name": "q8_0", "type": "Q8_0"}, {"name": "q4_k_m", "type": "Q4_K_M"}]


class LlamaRecipe(StrictModel):
    """One llama.cpp quantization (``llama_model_quantize``): ``type`` is a llama.cpp type
    name (Q8_0, Q6_K, Q4_K_M, Q4_0, Q2_K, IQ4_XS...); ``imatrix``: an importance matrix
    (.npz of GGUF tensor name -> mean squared input of that matrix), relative to params.yaml."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = Field(
        description="The candidate's name, unique within the target and not the baseline's."
    )
    type: str = Field(
        description="The llama.cpp quantization type (Q8_0, Q6_K, Q4_K_M, Q4_0, Q2_K, "
        "IQ4_XS...); an unknown type is an error listing the known ones."
    )
    imatrix: Path | None = Field(
        None,
        description="An importance matrix (.npz: GGUF tensor name -> mean squared input of "
        "that matrix), relative to params.yaml; null: none.",
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        from edgeproof.targets.llama_cpp.quantize import quant_type

        return quant_type(value)  # UnknownQuantType is a ValueError listing the known ones


class LlamaCppTargetConfig(TokenTimingConfig):
    """The ``llama-cpp`` target: a GGUF baseline (F16/F32) and llama.cpp quantizations, run
    with llama-cpp-python on the CPU.

    ``extra_buffer_types``: llama.cpp's repacked / AMX weight copies (its own default is on);
    off by default because its AMX kernels crash on some AMX CPUs (llama.cpp#20824, seen on
    this project's CI Xeon). Speed is timed as ``llama-bench`` does: ``pp_tokens`` prompt
    tokens in one batch and ``tg_tokens`` single-token decodes, ``repetitions`` each after
    ``warmup``, in ``rounds`` fresh processes per candidate interleaved with the baseline's.
    """

    BASELINE_NAME: ClassVar[str] = BASELINE

    work_pool: str = Field(
        "edge-laptop-cpu",
        description="The Prefect work pool of the device that measures this target; at most "
        "one measurement at a time runs per pool (tag `edgeproof-device:<work_pool>`).",
    )
    recipes: list[LlamaRecipe] = Field(
        default_factory=default_recipes,
        validate_default=True,
        description="The quantizations, each one candidate beside the `baseline` GGUF. Left "
        "out: Q8_0 and Q4_K_M; `[]`: the baseline only.",
    )
    extra_buffer_types: bool = Field(
        False,
        description="llama.cpp's repacked / AMX weight copies (llama.cpp's own default is "
        "on); off because its AMX kernels crash on some AMX CPUs (llama.cpp#20824).",
    )

    def with_project_paths(self, resolve: Callable[[Path, str], Path]) -> LlamaCppTargetConfig:
        """Each recipe's importance matrix as a checked project file."""
        recipes = [
            r.model_copy(update={"imatrix": resolve(r.imatrix, f"recipe {r.name} imatrix")})
            if r.imatrix is not None
            else r
            for r in self.recipes
        ]
        return self.model_copy(update={"recipes": recipes})
