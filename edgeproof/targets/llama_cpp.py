"""``llama-cpp``: a GGUF language model and its llama.cpp quantizations, on the CPU.

Facts this relies on (docs/architecture.md, "Runtime facts", edgeproof/llama/*):
- The baseline is the user's GGUF as given (F16 or F32); each recipe is one llama.cpp
  quantization type made with the bundled ``llama_model_quantize`` (no separate binaries),
  optionally with an importance matrix.
- llama.cpp aborts the whole process on some bad files (GGML_ASSERT), so the gate never
  loads a GGUF with llama.cpp in its own process: quantization runs in a subprocess, the
  baseline's header and tensor table are read with the pure-Python ``gguf`` reader (a
  corrupt or truncated file raises a clear error here), and measurement runs in one-shot
  subprocesses (``edgeproof.llama.harness``), never through ``open_session``.
- ``open_session`` is for serving only (``edgeproof.serving``: the candidate as an MLflow
  Model): it loads the GGUF in the calling process (``edgeproof.llama.session``), a file
  that has already loaded in the gate's subprocesses, and returns the logits the gate
  scored for the token windows it is given.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import Field, field_validator

from edgeproof.config import StrictModel
from edgeproof.data import Dataset
from edgeproof.llama.gguf_check import check_gguf
from edgeproof.records import Candidate
from edgeproof.targets.base import (
    Availability,
    RecipeTarget,
    Session,
    TargetSpec,
    TokenTimingConfig,
    fresh_dir,
)

NAME = "llama-cpp"
BASELINE = "baseline"


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
        from edgeproof.llama.quantize import quant_type

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
        default_factory=list,
        description="The quantizations, each one candidate beside the `baseline` GGUF.",
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


class LlamaCpp(RecipeTarget[LlamaCppTargetConfig]):
    """The ``llama-cpp`` target."""

    name = NAME

    def available(self) -> Availability:
        try:
            import llama_cpp
        except ImportError as exc:
            return Availability(False, f"llama-cpp-python is not installed ({exc})")
        try:
            import gguf  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"the gguf package is not installed ({exc})")
        return Availability(True, runtime_version=llama_cpp.__version__)

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        facts = check_gguf(model)
        out = fresh_dir(workdir / BASELINE) / model.name
        _link_or_copy(model, out)
        return Candidate(
            target=NAME,
            name=BASELINE,
            files=(out,),
            recipe={"method": "none", **facts},
            precision=str(facts["file_type"]).lower(),
            is_baseline=True,
        )

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        from edgeproof.llama.gguf_model import gguf_info
        from edgeproof.llama.quantize import quantize

        spec = self._recipes[recipe]
        out = fresh_dir(workdir / recipe) / f"{baseline.model_file.stem}-{spec.type}.gguf"
        result = quantize(
            baseline.model_file,
            out,
            spec.type,
            imatrix=spec.imatrix,
            threads=self.config.threads,
            timeout=self.config.timeout_seconds,
        )
        info = gguf_info(out)
        return Candidate(
            target=NAME,
            name=recipe,
            files=(out,),
            recipe={
                "method": "llama_model_quantize",
                "type": result.qtype,
                "imatrix": spec.imatrix.name if spec.imatrix else None,
                "imatrix_entries": result.imatrix_entries,
                "quantize_seconds": round(result.seconds, 3),
                "n_params": info.n_params,
                "bits_per_weight": round(info.bits_per_weight, 3),
            },
            precision=result.qtype.lower(),
        )

    def open_session(self, candidate: Candidate, threads: int) -> Session:
        """The candidate in llama.cpp in this process, for serving (never for measuring):
        ``edgeproof.llama.session``."""
        from edgeproof.llama.session import LlamaSession

        return LlamaSession(
            candidate.model_file, threads, self.config.extra_buffer_types, candidate.precision
        )


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link when on the same file system (GGUFs are large), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


SPEC = TargetSpec(
    name=NAME,
    config=LlamaCppTargetConfig,
    backend=LlamaCpp,
    model_format="gguf",
    harness="edgeproof.llama.harness:measure_language_models",
)
