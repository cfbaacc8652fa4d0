"""The ``language_model`` task kind: a GGUF model scored on held-out token windows.

Data files hold ``tokens`` (windows, context + 1); candidates are measured by their target's
own harness (``TargetSpec.harness``: llama.cpp or MLX; logits per window, llama-bench speed
in fresh processes) and summarized as ``llama-perplexity --kl-divergence`` scores them
(``gates.summarize_lm``): per-token KL, top-1 agreement, perplexity ratio, tokens/s. Its
thresholds are params.yaml ``gates.language_model`` (``LanguageModelGate``); its checks stand
in for the accuracy and fidelity ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from edgeproof.config import Fraction, MeasureConfig, Params, StrictModel
from edgeproof.data.feed import FeedLayout
from edgeproof.data.language_model import (
    TOKENS_KEY,
    WINDOW_LOGITS,
    load_token_windows,
)
from edgeproof.errors import ConfigError
from edgeproof.gates.checks import KindChecks, ci_check, exact_check
from edgeproof.gates.summarize_lm import summarize_language_model
from edgeproof.records import (
    Candidate,
    CandidateSummary,
    Check,
    Estimate,
    TargetOutcome,
    format_estimate,
)
from edgeproof.records.measurement import InputSpec, MeasureJob, Progress, TargetMeasurements
from edgeproof.targets.llama_cpp.gguf_check import check_gguf
from edgeproof.targets.registry import target_harness
from edgeproof.tasks.base import Signature, Summarizer, TaskKind

NAME = "language_model"


class LanguageModelGate(StrictModel):
    """Language models (task ``language_model``), scored as ``llama-perplexity
    --kl-divergence`` does on held-out tokens: mean and p99 per-token KL(baseline ||
    candidate), top-1 agreement, perplexity ratio. Defaults and their justification against
    llama.cpp's published Llama-3-8B figures: docs/language-models.md."""

    max_mean_kl: Annotated[float, Field(ge=0.0)] | None = Field(
        0.005, description="Largest mean per-token KL(baseline || candidate), in nats."
    )
    max_kl_p99: Annotated[float, Field(ge=0.0)] | None = Field(
        0.1, description="Largest 99th percentile of the per-token KL, in nats."
    )
    min_top1_agreement: Fraction | None = Field(
        0.95,
        description="Smallest share of tokens whose most likely next token matches the baseline's.",
    )
    max_ppl_ratio: Annotated[float, Field(ge=1.0)] | None = Field(
        1.03, description="Largest ratio of the candidate's perplexity to the baseline's."
    )


def language_model_check(name: str, limit: float, s: CandidateSummary) -> Check:
    """Token-level fidelity of a language model (llama-perplexity --kl-divergence's)."""
    lm = s.language
    assert lm is not None and s.mean_kl is not None and s.top1_agreement is not None
    if name == "language_model.max_mean_kl":
        return ci_check(name, "mean token KL", s.mean_kl, limit, "max", "nats")
    if name == "language_model.max_kl_p99":
        return exact_check(name, "p99 token KL", lm.kl_p99, limit, "max", "nats")
    if name == "language_model.min_top1_agreement":
        return ci_check(name, "top-1 agreement", s.top1_agreement, limit, "min", "%")
    assert lm.ppl_ratio is not None
    return ci_check(name, "perplexity ratio", lm.ppl_ratio, limit, "max", "ratio")


LANGUAGE_MODEL_CHECKS = KindChecks(
    names=tuple(f"{NAME}.{key}" for key in LanguageModelGate.model_fields),
    check=language_model_check,
)
_HEADER = (
    "| candidate | type | bits/weight | mean KL | p99 KL | top-1 agree % | perplexity "
    "| PPL ratio | pp tok/s | tg tok/s | ms/token p50 |\n" + "|---" * 11 + "|"
)


class LanguageModelTask(TaskKind):
    """Task kind ``language_model``."""

    name = NAME
    model_format = "gguf"
    label_kind = "values"
    takes_metric = False
    gate_section = LanguageModelGate

    def inspect_model(self, model: Path, params: Params) -> list[InputSpec]:
        check_gguf(model)
        return [InputSpec(TOKENS_KEY, np.dtype(np.int32), (None, None))]

    def check_data(
        self, path: Path, what: str, specs: list[InputSpec], params: Params, layout: FeedLayout
    ) -> None:
        load_token_windows(path)

    def load_truth(
        self, eval_data: Path, params: Params, root: Path, layout: FeedLayout
    ) -> np.ndarray:
        return load_token_windows(eval_data)

    def serving_example(
        self, eval_data: Path, params: Params, layout: FeedLayout
    ) -> tuple[Mapping[str, np.ndarray], Signature | None]:
        """The first token window; ``tokens`` (its dtype) in, float32 ``logits`` out."""
        windows = load_token_windows(eval_data)
        tokens = InputSpec(TOKENS_KEY, windows.dtype, (None, None))
        return {TOKENS_KEY: windows[:1]}, ((tokens,), (WINDOW_LOGITS,))

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

    # head_to_head: none (llama-bench style runs in one-shot processes: no paired blocks)

    def summarizer(
        self, baseline: Candidate, measured: TargetMeasurements, truth: Any, params: Params
    ) -> Summarizer:
        base_logits = np.load(measured.outputs[baseline.name], allow_pickle=False)

        def summarize_one(cand: Candidate) -> CandidateSummary:
            summary = summarize_language_model(
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
            return summary.model_copy(update={"task": NAME})

        return summarize_one

    def checks(self) -> KindChecks:
        return LANGUAGE_MODEL_CHECKS

    def metrics(self, summary: CandidateSummary) -> dict[str, Estimate | float | None]:
        lm = summary.language
        if lm is None:
            return {}
        return {
            "lm.perplexity": lm.perplexity,
            "lm.ppl_ratio": lm.ppl_ratio,
            "lm.pp_tokens_per_s": lm.pp_tokens_per_s,
            "lm.tg_tokens_per_s": lm.tg_tokens_per_s,
            "lm.kl_p99": lm.kl_p99,
            "lm.kl_max": lm.kl_max,
            "lm.bits_per_weight": lm.bits_per_weight,
            "lm.scored_tokens": lm.n_tokens,
        }

    def report_lines(self, outcome: TargetOutcome) -> list[str]:
        """llama-perplexity's KL / top-1 / PPL and llama-bench's tokens/s, one row each."""
        rows = []
        first = None
        for o in outcome.outcomes:
            s = o.summary
            lm = s.language if s is not None else None
            if s is None or lm is None or s.mean_kl is None:
                continue
            first = first or lm
            kl = s.mean_kl
            cells = [
                o.candidate.name,
                s.precision.upper(),
                f"{lm.bits_per_weight:.2f}",
                f"{kl.value:.2e} [{kl.low:.2e}, {kl.high:.2e}]",
                f"{lm.kl_p99:.3g}",
                format_estimate(s.top1_agreement, 2, 100.0),
                format_estimate(lm.perplexity, 3),
                format_estimate(lm.ppl_ratio, 4),
                format_estimate(lm.pp_tokens_per_s, 0),
                format_estimate(lm.tg_tokens_per_s, 0),
                format_estimate(s.median_ms, 3),
            ]
            rows.append("| " + " | ".join(cells) + " |")
        if first is None:
            return []
        return [
            f"Language model on {first.n_tokens} held-out tokens ({first.n_windows} windows, "
            f"second half of each scored; KL(baseline || candidate) in nats); speed as "
            f"llama-bench: pp{first.pp_tokens} / tg{first.tg_tokens} tokens/s:",
            "",
            _HEADER,
            *rows,
            "",
        ]


KIND = LanguageModelTask()
