"""The ``language_model`` task kind: a GGUF model scored on held-out token windows.

Data files hold ``tokens`` (windows, context + 1); candidates are measured by their target's
own harness (``TargetSpec.harness``: llama.cpp or MLX; logits per window, llama-bench speed
in fresh processes) and
summarized as ``llama-perplexity --kl-divergence`` scores them (``gates.summarize_lm``):
per-token KL, top-1 agreement, perplexity ratio, tokens/s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import MeasureConfig, Params
from edgeproof.data.feed import FeedLayout
from edgeproof.data.language_model import TOKENS_KEY, load_token_windows
from edgeproof.errors import ConfigError
from edgeproof.records import Candidate, CandidateSummary
from edgeproof.records.measurement import (
    HeadToHeadRun,
    InputSpec,
    MeasureJob,
    Progress,
    TargetMeasurements,
)
from edgeproof.targets.llama_cpp.gguf_check import check_gguf
from edgeproof.targets.registry import target_harness
from edgeproof.tasks.base import Summarizer
from gates.summarize_lm import summarize_language_model

NAME = "language_model"


class LanguageModelTask:
    """Task kind ``language_model``."""

    name = NAME
    model_format = "gguf"
    label_kind = "values"

    def inspect_model(self, model: Path, params: Params) -> list[InputSpec]:
        check_gguf(model)
        return [InputSpec(TOKENS_KEY, np.dtype(np.int32), (None, None))]

    def feed_layout(self, model: Path, params: Params) -> FeedLayout:
        return FeedLayout()

    def check_data(
        self, path: Path, what: str, specs: list[InputSpec], params: Params, layout: FeedLayout
    ) -> None:
        load_token_windows(path)

    def load_truth(
        self, eval_data: Path, params: Params, root: Path, layout: FeedLayout
    ) -> np.ndarray:
        return load_token_windows(eval_data)

    def num_classes(self, params: Params) -> int | None:
        return None

    def measure(
        self,
        baseline: Candidate,
        candidates: list[Candidate],
        job: MeasureJob,
        settings: MeasureConfig,
        progress: Progress,
    ) -> TargetMeasurements:
        harness = target_harness(job.target)
        if harness is None:
            raise ConfigError(f"target {job.target!r} has no language-model harness")
        return harness(baseline, candidates, job, settings, progress)

    def head_to_head(
        self,
        a: Candidate,
        b: Candidate,
        job: MeasureJob,
        settings: MeasureConfig,
        progress: Progress,
    ) -> HeadToHeadRun | None:
        return None  # llama-bench style runs in one-shot processes: no paired blocks

    def summarizer(
        self, baseline: Candidate, measured: TargetMeasurements, truth: Any, params: Params
    ) -> Summarizer:
        base_logits = np.load(measured.outputs[baseline.name], allow_pickle=False)

        def summarize_one(cand: Candidate) -> CandidateSummary:
            return summarize_language_model(
                cand.name,
                cand.precision,
                cand.is_baseline,
                measured.raw[cand.name],
                base_logits,
                np.load(measured.outputs[cand.name], allow_pickle=False),
                truth,
                float(cand.recipe.get("bits_per_weight", float("nan"))),
                int(cand.recipe.get("n_params", 0)),
                params.measure,
            )

        return summarize_one
