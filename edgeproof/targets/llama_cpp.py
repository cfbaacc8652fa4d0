"""``llama-cpp``: a GGUF language model and its llama.cpp quantizations, on the CPU.

Facts this relies on (DESIGN.md section 7, edgeproof/llama/*):
- The baseline is the user's GGUF as given (F16 or F32); each recipe is one llama.cpp
  quantization type made with the bundled ``llama_model_quantize`` (no separate binaries),
  optionally with an importance matrix.
- llama.cpp aborts the whole process on some bad files (GGML_ASSERT), so nothing here loads
  a GGUF with llama.cpp: quantization runs in a subprocess, the baseline's header and tensor
  table are read with the pure-Python ``gguf`` reader (a corrupt or truncated file raises a
  clear error here), and measurement runs in one-shot subprocesses
  (``edgeproof.llama.harness``), never through ``open_session``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgeproof.config import LlamaCppTargetConfig
from edgeproof.data import Dataset
from edgeproof.errors import InputError
from edgeproof.records import Candidate
from edgeproof.targets.base import Availability, RecipeTarget, Session, fresh_dir

NAME = "llama-cpp"
BASELINE = "baseline"


def check_gguf(path: Path) -> dict[str, object]:
    """A readable llama GGUF's facts (``gguf_info``); ``InputError`` naming what is wrong."""
    from edgeproof.llama.gguf_model import gguf_info

    if path.is_dir():
        raise InputError(f"model path is a directory, not a file: {path}")
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    try:
        info = gguf_info(path)
    except Exception as exc:  # the gguf reader raises several types on a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise InputError(f"model is not a readable GGUF file ({first}): {path}") from None
    if info.n_params == 0 or info.tensor_bytes > info.file_bytes:
        raise InputError(f"GGUF has no tensors or is truncated: {path}")
    return {
        "architecture": info.metadata.get("general.architecture"),
        "file_type": _file_type(info.tensor_types),
        "n_params": info.n_params,
        "bits_per_weight": round(info.bits_per_weight, 3),
    }


def _file_type(tensor_types: dict[str, int]) -> str:
    """The dominant tensor type (e.g. F16), as llama.cpp names a file's type."""
    return max(tensor_types.items(), key=lambda kv: kv[1])[0] if tensor_types else "unknown"


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
        raise NotImplementedError(
            "llama-cpp candidates are measured in llama.cpp subprocesses "
            "(edgeproof.llama.harness), not through a Session"
        )


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link when on the same file system (GGUFs are large), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
