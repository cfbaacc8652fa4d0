"""The params section of the ``openvino-cpu`` target and its recipes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from edgeproof.config import (
    AccuracyGate,
    Fraction,
    Params,
    RecipeTargetConfig,
    StrictModel,
)
from edgeproof.targets.base import Budget, MaxUnits, ProbeItems, SearchBudget

NAME = "openvino-cpu"
BASELINE = "fp32"


def default_recipes() -> list[dict[str, Any]]:
    """The recipe most teams try first on OpenVINO: NNCF post-training int8 with its
    defaults (``performance`` preset, ``subset_size`` 300), and a search from it (NNCF's
    ``ignored_scope`` holding the fewest sensitive units that pass)."""
    return [
        {"name": "nncf-int8", "method": "nncf-ptq", "preset": "performance"},
        {"name": "search-int8", "method": "search", "preset": "performance"},
    ]


class OpenVinoRecipe(StrictModel):
    """One OpenVINO recipe: a lower inference precision, or NNCF post-training int8.

    ``precision``: the same IR run with ``INFERENCE_PRECISION_HINT`` bf16 or f16.
    ``nncf-ptq``: ``nncf.quantize`` on ``calibration_samples`` items (its ``subset_size``)
    with ``preset`` and ``fast_bias_correction``.
    ``nncf-accuracy-control``: ``nncf.quantize_with_accuracy_control``, which reverts layers
    to floating point until the top-1 drop on the (labelled) calibration split is at most
    ``max_drop`` (absolute; default: ``gates.accuracy.max_drop_abs``), in at most
    ``max_iterations`` rounds (default: NNCF's, unbounded).
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = Field(
        description="The candidate's name, unique within the target and not the baseline's."
    )
    method: Literal["precision", "nncf-ptq", "nncf-accuracy-control", "search"] = Field(
        description="`precision`: the same IR run at a lower inference precision. "
        "`nncf-ptq`: NNCF post-training int8 (`nncf.quantize`). `nncf-accuracy-control`: "
        "NNCF int8 that reverts layers to float until the top-1 drop on the labelled "
        "calibration split is at most `max_drop`. `search`: NNCF int8 with the graph's most "
        "sensitive units in its `ignored_scope`, as few as pass the fidelity gates on "
        'probes of the calibration set (docs/targets.md, "Search").'
    )
    precision: Literal["bf16", "f16"] = Field(
        "bf16",
        description="The candidate's `INFERENCE_PRECISION_HINT` (the baseline runs f32).",
        json_schema_extra={"methods": ["precision"]},
    )
    preset: Literal["performance", "mixed"] = Field(
        "performance",
        description="NNCF quantization preset: `performance` (symmetric) or `mixed` "
        "(asymmetric activations).",
        json_schema_extra={"methods": ["nncf-ptq", "nncf-accuracy-control", "search"]},
    )
    fast_bias_correction: bool = Field(
        True,
        description="NNCF's fast bias correction (false: its slower, more exact algorithm).",
        json_schema_extra={"methods": ["nncf-ptq", "nncf-accuracy-control", "search"]},
    )
    calibration_samples: Annotated[int, Field(ge=1)] = Field(
        300,
        description="Calibration items NNCF uses (its `subset_size`), the first of the "
        "calibration set.",
        json_schema_extra={"methods": ["nncf-ptq", "nncf-accuracy-control", "search"]},
    )
    max_drop: Fraction | None = Field(
        None,
        description="Largest absolute top-1 drop on the calibration split; null: "
        "`gates.accuracy.max_drop_abs`. A miss fails the candidate.",
        json_schema_extra={"methods": ["nncf-accuracy-control"]},
    )
    max_iterations: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Rounds of reverting layers at most; null: NNCF's default (unbounded).",
        json_schema_extra={"methods": ["nncf-accuracy-control"]},
    )
    probe_items: ProbeItems = 64
    max_units: MaxUnits = 24
    budget: Budget = SearchBudget()


class OpenVinoTargetConfig(RecipeTargetConfig):
    """The ``openvino-cpu`` target: OpenVINO IR, FP32 baseline (precision hint f32)."""

    device: str = Field(
        "CPU",
        description="The OpenVINO device: CPU, GPU, NPU or AUTO (the target is unavailable, "
        "saying why, when it is absent).",
    )
    recipes: list[OpenVinoRecipe] = Field(
        default_factory=default_recipes,
        validate_default=True,
        description="The recipes, each one candidate beside the `fp32` baseline. Left out: "
        "NNCF post-training int8 (`nncf-int8`) and a search from it (`search-int8`); `[]`: the "
        "baseline only.",
    )

    @classmethod
    def complete_raw(cls, section: Any, raw_params: Mapping[str, Any]) -> Any:
        """Accuracy-control recipes without ``max_drop`` take the accuracy gate's."""
        try:
            recipes = section["recipes"]
            gate = (raw_params.get("gates") or {}).get("accuracy") or {}
            max_drop = gate.get("max_drop_abs", AccuracyGate().max_drop_abs)
        except (TypeError, KeyError, AttributeError):
            return section
        valid = isinstance(max_drop, int | float) and not isinstance(max_drop, bool)
        if not isinstance(recipes, list) or not valid or not 0.0 <= max_drop <= 1.0:
            return section  # a bad gate value is reported at the gate, not at the recipe
        filled = [{**r, "max_drop": max_drop} if _lacks_max_drop(r) else r for r in recipes]
        return {**section, "recipes": filled}

    def check_with(self, name: str, params: Params) -> None:
        """Accuracy control needs a max_drop: its own or the accuracy gate's."""
        for recipe in self.recipes:
            if recipe.method == "nncf-accuracy-control" and recipe.max_drop is None:
                raise ValueError(
                    f"targets.{name}.recipes.{recipe.name}: nncf-accuracy-control needs "
                    "max_drop (gates.accuracy.max_drop_abs is off)"
                )


def _lacks_max_drop(recipe: Any) -> bool:
    return (
        isinstance(recipe, dict)
        and recipe.get("method") == "nncf-accuracy-control"
        and "max_drop" not in recipe
    )


_RECIPE_FIELDS = {
    "precision": ("precision",),
    "nncf-ptq": ("preset", "fast_bias_correction", "calibration_samples"),
    "search": (
        "preset",
        "fast_bias_correction",
        "calibration_samples",
        "probe_items",
        "max_units",
        "budget",
    ),
    "nncf-accuracy-control": (
        "preset",
        "fast_bias_correction",
        "calibration_samples",
        "max_drop",
        "max_iterations",
    ),
}


def recipe_record(spec: OpenVinoRecipe) -> dict[str, Any]:
    """The recipe as logged: its method and only the fields that method uses."""
    return {"method": spec.method} | spec.model_dump(include=set(_RECIPE_FIELDS[spec.method]))
