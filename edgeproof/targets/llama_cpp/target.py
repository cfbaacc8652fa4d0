"""``llama-cpp``: a GGUF language model and its llama.cpp quantizations, on the CPU.

Facts this relies on (docs/architecture.md, "Runtime facts", edgeproof/targets/llama_cpp/*):
- The baseline is the user's GGUF as given (F16 or F32); each recipe is one llama.cpp
  quantization type made with the bundled ``llama_model_quantize`` (no separate binaries),
  optionally with an importance matrix.
- llama.cpp aborts the whole process on some bad files (GGML_ASSERT), so the gate never
  loads a GGUF with llama.cpp in its own process: quantization runs in a subprocess, the
  baseline's header and tensor table are read with the pure-Python ``gguf`` reader (a
  corrupt or truncated file raises a clear error here), and measurement runs in one-shot
  subprocesses (``edgeproof.targets.llama_cpp.harness``), never through ``open_session``.
- ``open_session`` is for serving only (``edgeproof.device.serving``: the candidate as an MLflow
  Model): it loads the GGUF in the calling process (``edgeproof.targets.llama_cpp.session``), a file
  that has already loaded in the gate's subprocesses, and returns the logits the gate
  scored for the token windows it is given.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgeproof.data.dataset import Dataset
from edgeproof.records import Candidate
from edgeproof.targets.base import (
    Availability,
    RecipeTarget,
    Session,
    TargetSpec,
    fresh_dir,
)
from edgeproof.targets.llama_cpp.config import BASELINE, NAME, LlamaCppTargetConfig
from edgeproof.targets.llama_cpp.gguf_check import check_gguf


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
        from edgeproof.targets.llama_cpp.gguf_model import gguf_info
        from edgeproof.targets.llama_cpp.quantize import quantize

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
        ``edgeproof.targets.llama_cpp.session``."""
        from edgeproof.targets.llama_cpp.session import LlamaSession

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
    harness="edgeproof.targets.llama_cpp.harness:measure_language_models",
)
