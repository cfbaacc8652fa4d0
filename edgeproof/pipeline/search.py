"""A search recipe (``method: search``): the fewest sensitive units in float that pass.

Steps (``edgeproof.gates.search`` decides each; probes run in one-shot child processes,
``edgeproof.measure.probe``):
1. The baseline's outputs on the probe items (the first ``probe_items`` calibration items).
2. The fully quantized mix: when its probe passes, it is the result (nothing kept in float).
3. Each unit's sensitivity: the loss of the mix that quantizes that unit alone.
4. Bisection on ``k``, the number of most sensitive units kept in float: the smallest ``k``
   whose probe passes.
The mix found is built as the recipe's candidate, which is then measured and gated like any
other; its recipe record holds the search (units kept in float, sensitivities, steps, the
budget used). The budget (probes, seconds) stops the search: with a passing mix found, that
one is the result; without, the recipe fails saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.dataset import Dataset
from edgeproof.errors import InputError
from edgeproof.gates.search import Bisection, ProbeResult, rank_by_sensitivity
from edgeproof.measure.probe import probe_outputs, save_calls
from edgeproof.records import Candidate
from edgeproof.records.measurement import Progress
from edgeproof.targets.base import SearchableTarget, SearchPlan, SearchUnit, fresh_dir
from edgeproof.targets.registry import target_spec

# the task kind's verdict on a probe: (baseline outputs, probe outputs) -> result
ProbeJudge = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], ProbeResult]


class _BudgetSpent(Exception):
    """The search's probes or seconds are used up."""


class _Prober:
    """Builds and probes mixes of one search recipe, within its budget."""

    def __init__(
        self,
        target: SearchableTarget,
        recipe: str,
        plan: SearchPlan,
        baseline: Candidate,
        calibration: Dataset,
        folder: Path,
        judge: ProbeJudge,
    ) -> None:
        self.target, self.recipe, self.plan, self.baseline = target, recipe, plan, baseline
        self.calibration, self.folder, self.judge = calibration, folder, judge
        spec = target_spec(target.name)
        config = target.config.model_dump(mode="json", by_alias=True)  # type: ignore[attr-defined]
        self.refs = (spec.backend_ref, spec.config_ref, config)
        self.threads = int(getattr(target.config, "threads", 1))  # type: ignore[attr-defined]
        items = calibration.head(plan.probe_items)
        self.calls = save_calls(
            [items.batch(i, 1) for i in range(len(items))], folder / "calls.npz"
        )
        self.started = time.monotonic()
        self.probes = 0
        self.base = self._outputs(baseline)

    def _outputs(self, candidate: Candidate) -> dict[str, np.ndarray]:
        return probe_outputs(
            self.refs, candidate, self.calls, self.folder / "out.npz", self.threads
        )

    def probe(self, keep_float: tuple[str, ...]) -> ProbeResult:
        if self.probes >= self.plan.max_probes:
            raise _BudgetSpent(f"{self.probes} probes")
        if time.monotonic() - self.started > self.plan.max_seconds:
            raise _BudgetSpent(f"{self.plan.max_seconds:g} s")
        self.probes += 1
        mix = self.target.build_mix(
            self.recipe, self.baseline, self.calibration, self.folder / "mix", keep_float
        )
        return self.judge(self.base, self._outputs(mix))

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 1)


def run_search(
    target: SearchableTarget,
    recipe: str,
    plan: SearchPlan,
    baseline: Candidate,
    calibration: Dataset,
    workdir: Path,
    judge: ProbeJudge,
    progress: Progress = lambda _msg: None,
) -> Candidate:
    """The candidate of search recipe ``recipe`` (see the module doc); raises InputError
    when no mix passes within the budget."""
    units = target.search_units(recipe, baseline)
    if not units:
        raise InputError(f"{recipe}: search: the graph has no named node the quantizer takes")
    prober = _Prober(
        target, recipe, plan, baseline, calibration, fresh_dir(workdir / f"{recipe}.search"), judge
    )
    steps: list[dict[str, Any]] = []
    sensitivity: dict[str, float] = {}
    ranked: list[str] = []
    found: int | None = None
    spent: str | None = None
    try:
        full = prober.probe(())
        steps.append(_step(0, full))
        if full.passes:
            found = 0
        else:
            for unit in units:
                others = tuple(n for u in units if u is not unit for n in u.nodes)
                sensitivity[unit.name] = prober.probe(others).loss
                progress(f"{target.name}: {recipe}: sensitivity of {unit.name} measured")
            ranked = rank_by_sensitivity(sensitivity)
            bisection = Bisection.start(len(units))
            while (k := bisection.next_k()) is not None:
                result = prober.probe(_nodes(units, ranked[:k]))
                steps.append(_step(k, result))
                bisection = bisection.after(k, result.passes)
            found = bisection.high if bisection.high < len(units) else None
    except _BudgetSpent as exc:
        spent = str(exc)
        passing = [s["kept_in_float"] for s in steps if s["passes"]]
        found = min(passing) if passing else None
    record = {
        "units": len(units),
        "probes": prober.probes,
        "seconds": prober.seconds(),
        "budget_spent": spent,
        "sensitivity": [{"unit": name, "loss": sensitivity[name]} for name in ranked],
        "steps": steps,
    }
    if found is None:
        why = f"budget spent ({spent})" if spent else "not even one unit quantized passed"
        raise InputError(
            f"{recipe}: search: no mix passed the probes ({why}; {prober.probes} probes, "
            f"{prober.seconds():g} s)"
        )
    kept = ranked[:found]
    candidate = target.build_mix(
        recipe, baseline, calibration, workdir / recipe, _nodes(units, kept)
    )
    progress(f"{target.name}: {recipe}: {len(kept)} of {len(units)} units kept in float")
    search = {**record, "kept_in_float": kept}
    return candidate.model_copy(update={"recipe": {**candidate.recipe, "search": search}})


def _nodes(units: list[SearchUnit], names: list[str]) -> tuple[str, ...]:
    by_name = {u.name: u for u in units}
    return tuple(node for name in names for node in by_name[name].nodes)


def _step(k: int, result: ProbeResult) -> dict[str, Any]:
    return {
        "kept_in_float": k,
        "loss": result.loss,
        "passes": result.passes,
        "detail": result.detail,
    }
