"""``mlx``: Apple MLX via mlx-lm for GGUF language models, from their Hugging Face-layout copy.

- The baseline is the model's Hugging Face-layout folder (``hf_model``: config.json and
  model*.safetensors) at its stored precision, checked in pure Python
  (``hf_model.check_hf_model``: a corrupt safetensors file or config is a one-line
  ``InputError`` before anything is written) and hard-linked into the work folder.
- Each recipe is one MLX quantization (``edgeproof.targets.mlx.quantize``), made in a subprocess.
- Nothing here imports ``mlx_lm`` (it lowers the open-file limit when imported) and the
  gate loads no MLX model in its own process: measurement runs in one-shot subprocesses
  (``edgeproof.targets.mlx.harness``), never through ``open_session``.
- ``open_session`` is for serving only (``edgeproof.device.serving``: the candidate as an MLflow
  Model): it loads the candidate's folder in the calling process (``edgeproof.targets.mlx.session``)
  and returns the logits the gate scored for the token windows it is given; without mlx
  and mlx-lm it raises ``TargetUnavailable`` with one line saying so.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

from edgeproof.data.dataset import Dataset
from edgeproof.errors import InputError, TargetUnavailable
from edgeproof.records import Candidate
from edgeproof.targets.base import (
    Availability,
    RecipeTarget,
    Session,
    TargetSpec,
    fresh_dir,
)
from edgeproof.targets.mlx.config import BASELINE, NAME, MlxRecipe, MlxTargetConfig
from edgeproof.targets.mlx.hf_model import check_hf_model, link_or_copy


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
        """The ``hf_model`` copy of the model (``model`` is its GGUF: the same weights)."""
        info = check_hf_model(self.config.hf_model)  # InputError before anything is written
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
        from edgeproof.targets.mlx.quantize import quantize

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
        """The candidate folder in mlx-lm in this process, for serving (never for measuring):
        ``edgeproof.targets.mlx.session``; ``TargetUnavailable`` when mlx or mlx-lm is missing."""
        available = mlx_availability()
        if not available.ok:
            reason = str(available.reason).splitlines()[0]
            raise TargetUnavailable(f"cannot serve mlx candidate {candidate.name!r}: {reason}")
        from edgeproof.targets.mlx.session import MlxSession

        return MlxSession(
            candidate.model_file.parent, self.config.device, threads, candidate.precision
        )


SPEC = TargetSpec(
    name=NAME,
    config=MlxTargetConfig,
    backend=MlxLm,
    model_format="gguf",  # serves the GGUF language-model task, from its hf_model copy
    harness="edgeproof.targets.mlx.harness:measure_mlx_models",
)
