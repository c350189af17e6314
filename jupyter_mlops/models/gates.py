"""Gates against the registry: the metrics of a model version, its champion, and the verdicts.

The grammar and the comparison are steps/gates.py's (a KFP component carries them); this
module adds what needs MLflow: which version holds the `champion` alias and what it scored.
A version's metrics are those of the run that logged its model; for a pipeline step's run,
the pipeline run's metrics fill in what the step itself did not report (a model trained in
one step and evaluated in the next), so a version registered from a cell and one registered
by a pipeline both have metrics. Runs are read in batches (one `search_runs` for up to 100
ids), so describing a page of versions costs a few queries, not two a version.

A pipeline that registers a version records each gate's verdict on it (`verdict_tags`, read
back by `recorded`). Only the standard library at module level: KFP components carry this file
too, and mlflow is imported by the functions that talk to the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from jupyter_mlops.errors import MlopsError, did_you_mean
from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.steps.gates import (
    CHAMPION,
    Gate,
    GateResult,
    GateSyntaxError,
    evaluate,
    parse_gate,
    parse_gates,
    read_verdict,
)

__all__ = ["ALIASES", "CHALLENGER", "CHAMPION", "Champion", "ConditionError", "Gate",
           "GateFailed", "GateResult", "Recorded", "check", "champion_of", "find_runs",
           "parse_condition", "parse_gate", "recorded", "run_metrics", "verdict_tags",
           "version_metrics"]

CHALLENGER = "challenger"  # the alias a version registered by a pipeline takes
ALIASES = (CHAMPION, CHALLENGER)  # our own alias names
RUNS_PER_READ = 100  # run ids in one search_runs filter
_SAFE_ID = re.compile(r"[\w-]+")  # a run id quoted into a filter
_COMPARED_WORD = re.compile(r"(?:>=|<=|==|>|<)\s*([A-Za-z_]\w*)")  # `champoin` in f1>=champoin

class ConditionError(MlopsError, ValueError):
    """A condition (`--if`, a gate) that does not parse, named with where it was given."""


class GateFailed(MlopsError):
    """One or more gates failed: each failing gate with the metric, its value and threshold."""

    def __init__(self, results: Iterable[GateResult], where: str = "") -> None:
        self.results = list(results)
        failed = "; ".join(r.message for r in self.results if not r.passed)
        super().__init__(f"{where + ': ' if where else ''}{failed}")


@dataclass(frozen=True)
class Recorded:
    """A gate's verdict as recorded on a model version when a pipeline registered it."""

    gate: str
    passed: bool
    message: str

    @property
    def metric(self) -> str | None:
        """The metric the gate judged (None: a gate this version's grammar no longer reads)."""
        try:
            return parse_gate(self.gate).metric
        except GateSyntaxError:
            return None


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
        hints = [did_you_mean(word, [CHAMPION]) for word in _COMPARED_WORD.findall(text)
                 if word != CHAMPION]
        hint = next((f"; {h}" for h in hints if h), "")
        raise ConditionError(f"{where}: {error}{hint}") from None


def version_metrics(client: Any, model: str, version: str | int) -> dict[str, float]:
    """The metrics of version `version` of registered model `model` (see the module's note)."""
    found = client.get_model_version(model, str(version))
    return run_metrics(client, [found.run_id]).get(found.run_id, {}) if found.run_id else {}


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
    metrics = run_metrics(client, [holder.run_id]).get(holder.run_id, {}) if holder.run_id else {}
    return Champion(model, alias, str(holder.version), metrics)


def check(gates: Iterable[Gate], metrics: Mapping[str, float],
          champion: Champion | None = None) -> list[GateResult]:
    """Every gate's verdict; relative gates compare with `champion` (None or no version: pass)."""
    known = champion.metrics if champion is not None and champion.version else None
    against = champion.label if champion is not None else CHAMPION
    return [_hinted(evaluate(gate, metrics, known, against), metrics) for gate in gates]


def _hinted(result: GateResult, metrics: Mapping[str, float]) -> GateResult:
    """A metric the run did not report, with the one of its metrics it looks like a
    misspelling of: `f2>=0.5` on a run with f1 says "did you mean 'f1'?"."""
    # metric names are short (f1, r2, auc): one wrong character is half of one
    hint = did_you_mean(result.metric, metrics, cutoff=0.5) if result.value is None else ""
    return replace(result, message=f"{result.message}; {hint}") if hint else result


def verdict_tags(results: Iterable[GateResult]) -> dict[str, str]:
    """The version tags recording each verdict: `mlops.gate.<gate in words>` = its message."""
    return {vocab.gate_tag(str(r.gate)): r.message for r in results}


def recorded(tags: Mapping[str, str]) -> list[Recorded]:
    """The verdicts recorded on a version (`verdict_tags`), by gate."""
    found = [(read_verdict(v), v) for k, v in sorted(tags.items())
             if k.startswith(vocab.GATE_TAG_PREFIX)]
    return [Recorded(said[0], said[1], message) for said, message in found if said]


def run_metrics(client: Any, run_ids: Iterable[str],
                runs: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """By run id, the metrics of the versions whose models those runs logged (see the module's
    note). `runs`: runs read already (`find_runs`); the pipelines read here join them. A run
    that is not there is left out."""
    ids = [i for i in run_ids if i]
    runs = find_runs(client, ids, runs)
    pipelines = {i: vocab.pipeline_of_step(runs[i].data.tags) for i in ids if i in runs}
    find_runs(client, [p for p in pipelines.values() if p], runs)
    return {i: (dict(runs[p].data.metrics) if p in runs else {}) | dict(runs[i].data.metrics)
            for i, p in pipelines.items()}


def find_runs(client: Any, run_ids: Iterable[str],
              runs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The runs with these ids by id, deleted ones too, added to `runs` (those in it are not
    read again): one `search_runs` per RUNS_PER_READ ids, in the store's order. An id with no
    run is left out."""
    from mlflow.entities import ViewType

    runs = {} if runs is None else runs
    wanted = sorted({i for i in run_ids if i and i not in runs and _SAFE_ID.fullmatch(i)})
    experiments = _experiment_ids(client) if wanted else []
    for start in range(0, len(wanted), RUNS_PER_READ):
        chunk = wanted[start:start + RUNS_PER_READ]
        listed = ", ".join(f"'{i}'" for i in chunk)
        for run in client.search_runs(experiments, f"attributes.run_id IN ({listed})",
                                      run_view_type=ViewType.ALL, max_results=len(chunk)):
            runs[run.info.run_id] = run
    return runs


def _experiment_ids(client: Any) -> list[str]:
    """Every experiment's id, deleted ones too: search_runs asks which to look in."""
    from mlflow.entities import ViewType

    ids: list[str] = []
    token = None
    while True:
        found = client.search_experiments(view_type=ViewType.ALL, max_results=1000,
                                          page_token=token)
        ids += [e.experiment_id for e in found]
        token = found.token
        if not token:
            return ids
