"""Build a target's candidates: the baseline first, then one per configured recipe.

A recipe that fails (an unsupported op, a quantizer error) becomes an ``error`` outcome with
its reason and the other recipes go on; a baseline that cannot be built stops the target.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import cast

from edgeproof.data.dataset import Dataset
from edgeproof.errors import InputError, first_line
from edgeproof.pipeline.judge import error_outcome
from edgeproof.pipeline.search import ProbeJudge, run_search
from edgeproof.records import Candidate, CandidateOutcome, TargetOutcome
from edgeproof.records.measurement import Progress
from edgeproof.targets.base import SearchableTarget, Target, search_plan

MAX_WARNINGS = 5  # per candidate, in its report row


def build_candidates(
    target: Target,
    model: Path,
    calibration: Dataset,
    workdir: Path,
    progress: Progress = lambda _msg: None,
    judge: ProbeJudge | None = None,
) -> tuple[Candidate, list[Candidate], list[CandidateOutcome]]:
    """(baseline, built candidates, outcomes of recipes that failed to build); ``judge``:
    the task kind's verdict on a search's probes (``TaskKind.probe_judge``)."""
    progress(f"{target.name}: building baseline")
    baseline = target.baseline(model, workdir, calibration)
    built: list[Candidate] = []
    failed: list[CandidateOutcome] = []
    for recipe in target.recipes():
        progress(f"{target.name}: optimizing {recipe}")
        try:
            built.append(_optimize(target, recipe, baseline, calibration, workdir, judge, progress))
        except Exception as exc:  # any quantizer error fails this recipe only
            reason = f"{recipe}: optimization failed: {first_line(exc)}"
            placeholder = Candidate(
                target=target.name, name=recipe, files=(), recipe={}, precision="unknown"
            )
            failed.append(error_outcome(placeholder, reason))
    return baseline, built, failed


def _optimize(
    target: Target,
    recipe: str,
    baseline: Candidate,
    calibration: Dataset,
    workdir: Path,
    judge: ProbeJudge | None,
    progress: Progress,
) -> Candidate:
    """``target.optimize`` (or the search of a search recipe), with the RuntimeWarnings it
    raised (numerical trouble: an overflow in a cast, an invalid zero point) noted in the
    candidate's recipe (``warnings``), so the report says why a candidate may have broken."""
    plan = search_plan(target, recipe)
    if plan is not None and judge is None:
        raise InputError(f"{recipe}: this task kind cannot judge a search's probes")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        if plan is not None and judge is not None:
            searchable = cast(SearchableTarget, target)
            candidate = run_search(
                searchable, recipe, plan, baseline, calibration, workdir, judge, progress
            )
        else:
            candidate = target.optimize(recipe, baseline, calibration, workdir)
    notes = sorted(
        {
            f"{w.category.__name__}: {first_line(Exception(w.message))} "
            f"({Path(w.filename).name}:{w.lineno})"
            for w in caught
            if issubclass(w.category, RuntimeWarning)
        }
    )[:MAX_WARNINGS]
    if not notes:
        return candidate
    record = {**candidate.recipe, "warnings": [*candidate.recipe.get("warnings", ()), *notes]}
    return candidate.model_copy(update={"recipe": record})


def unavailable_outcome(target: Target) -> TargetOutcome | None:
    """The ``unavailable`` outcome of a target that cannot run here (why), else None."""
    availability = target.available()
    if availability.ok:
        return None
    return TargetOutcome(
        target=target.name, available=False, reason=availability.reason, status="unavailable"
    )
