"""Gates against the registry: the metrics of a model version, its champion, and the verdicts.

The grammar and the comparison are steps/gates.py's (a KFP component carries them); this
module adds what needs MLflow: which version holds the `champion` alias and what it scored.
A version's metrics are those of the run that logged its model; for a pipeline step's run,
the pipeline run's metrics fill in what the step itself did not report (a model trained in
one step and evaluated in the next), so a version registered from a cell and one registered
by a pipeline both have metrics. Only the standard library at module level: KFP components
carry this file too, and mlflow is imported by the functions that talk to the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupyter_mlops.errors import MlopsError
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.steps.gates import (
    CHAMPION,
    Gate,
    GateResult,
    GateSyntaxError,
    evaluate,
    parse_gate,
    parse_gates,
)

__all__ = ["CHAMPION", "Champion", "ConditionError", "Gate", "GateFailed", "GateResult",
           "check", "champion_of", "parse_condition", "parse_gate", "run_metrics",
           "version_metrics"]

class ConditionError(MlopsError, ValueError):
    """A condition (`--if`, a gate) that does not parse, named with where it was given."""


class GateFailed(MlopsError):
    """One or more gates failed: each failing gate with the metric, its value and threshold."""

    def __init__(self, results: Iterable[GateResult], where: str = "") -> None:
        self.results = list(results)
        failed = "; ".join(r.message for r in self.results if not r.passed)
        super().__init__(f"{where + ': ' if where else ''}{failed}")


@dataclass(frozen=True)
class Champion:
    """The version of `model` holding an alias, and its metrics; `version` None when none does."""

    model: str
    alias: str = CHAMPION
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model} v{self.version} ({self.alias})" if self.version else self.alias


def parse_condition(text: str, where: str = "--if") -> list[Gate]:
    """`accuracy>=0.8 and f1>=champion`: the conditions of `promote --if` and the like."""
    try:
        return parse_gates(text)
    except GateSyntaxError as error:
        raise ConditionError(f"{where}: {error}") from None


def version_metrics(client: Any, model: str, version: str | int) -> dict[str, float]:
    """The metrics of version `version` of registered model `model` (see the module's note)."""
    found = client.get_model_version(model, str(version))
    return run_metrics(client, found.run_id) if found.run_id else {}


def champion_of(client: Any, model: str, alias: str = CHAMPION) -> Champion:
    """The version of `model` holding `alias` and its metrics; an unknown model or an alias
    nobody holds gives a Champion without a version (gates against it pass, saying so)."""
    from mlflow.exceptions import MlflowException

    try:
        holder = client.get_model_version_by_alias(model, alias)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        return Champion(model, alias)
    metrics = run_metrics(client, holder.run_id) if holder.run_id else {}
    return Champion(model, alias, str(holder.version), metrics)


def check(gates: Iterable[Gate], metrics: Mapping[str, float],
          champion: Champion | None = None) -> list[GateResult]:
    """Every gate's verdict; relative gates compare with `champion` (None or no version: pass)."""
    known = champion.metrics if champion is not None and champion.version else None
    against = champion.label if champion is not None else CHAMPION
    return [evaluate(gate, metrics, known, against) for gate in gates]


def run_metrics(client: Any, run_id: str) -> dict[str, float]:
    """The metrics of the version whose model run `run_id` logged (see the module's note)."""
    run = client.get_run(run_id)
    own = dict(run.data.metrics)
    pipeline = vocab.pipeline_of_step(run.data.tags)
    return dict(client.get_run(pipeline).data.metrics) | own if pipeline else own
