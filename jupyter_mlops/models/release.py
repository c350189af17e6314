"""After a pipeline's steps: its gates judged, its model registered as `challenger`, promoted.

The one decision both backends make, in the local runner after the steps and in the gate task
of a compiled KFP pipeline: the same plan (from the `gate:`, `register:` and `promote:` tags)
and the same call. Gates with a fixed threshold are quality gates: one failing fails the
pipeline and nothing is registered. Gates against the champion decide the promotion when a
step says `promote:ALIAS` (the model stays registered as `challenger`, not promoted, and the
result says why); without `promote:` they fail the pipeline like the others. Each gate's
verdict is recorded on the version registered (models/gates.py's `verdict_tags`), so the
registry says later why it was registered and what it was judged against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_mlops.models import gates
from jupyter_mlops.models.gates import CHALLENGER
from jupyter_mlops.steps.gates import CHAMPION, Gate, GateResult, parse_gate

if TYPE_CHECKING:
    from jupyter_mlops.notebook import StepGraph


@dataclass(frozen=True)
class Registration:
    """A step's `model:VAR` registered as `register:MODEL`, promoted to `promote:ALIAS`."""

    step: str
    variable: str
    model: str
    promote: str | None = None


@dataclass(frozen=True)
class ModelSource:
    """Where a step's model is to be registered from (`runs:/RUN_ID/VAR`), or why nowhere."""

    uri: str | None
    reason: str = ""


@dataclass(frozen=True)
class ReleasePlan:
    """The gates (as written) and registrations of a pipeline; JSON-ready for a KFP task."""

    gates: tuple[str, ...] = ()
    registrations: tuple[Registration, ...] = ()

    @classmethod
    def of(cls, graph: StepGraph) -> ReleasePlan | None:
        """The graph's plan; None when it has no gate and registers nothing."""
        found = tuple(Registration(s.name, s.options.model, s.options.register, s.options.promote)
                      for s in graph.steps if s.options.register and s.options.model)
        plan = cls(tuple(str(tag.gate) for tag in graph.gates), found)
        return plan if plan.gates or plan.registrations else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReleasePlan:
        return cls(tuple(data.get("gates", ())),
                   tuple(Registration(**r) for r in data.get("registrations", ())))

    def to_dict(self) -> dict[str, Any]:
        return {"gates": list(self.gates), "registrations": [asdict(r) for r in self.registrations]}

    @property
    def parsed(self) -> list[Gate]:
        return [parse_gate(text) for text in self.gates]

    @property
    def promotes(self) -> bool:
        return any(r.promote for r in self.registrations)

    def blocks(self, gate: Gate) -> bool:
        """A gate whose failure fails the pipeline (see the module's note)."""
        return not (gate.relative and self.promotes)


@dataclass
class ReleaseOutcome:
    """What the release did: every gate's verdict, the versions registered and promoted."""

    results: list[GateResult] = field(default_factory=list)
    blocking: list[bool] = field(default_factory=list)  # per result: does it fail the pipeline
    champion: gates.Champion | None = None
    registered: dict[str, int] = field(default_factory=dict)  # model -> new version
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """A quality gate failed: the pipeline fails."""
        return any(b and not r.passed for r, b in zip(self.results, self.blocking, strict=True))

    @property
    def beats_champion(self) -> bool:
        return all(r.passed for r, b in zip(self.results, self.blocking, strict=True) if not b)

    def error(self, where: str) -> gates.GateFailed:
        failing = [r for r, b in zip(self.results, self.blocking, strict=True) if b]
        return gates.GateFailed(failing, where)


def judge(plan: ReleasePlan, metrics: Mapping[str, float], client: Any = None) -> ReleaseOutcome:
    """Every gate's verdict on `metrics`. Gates against the champion read the registry through
    `client`; with no client there is no champion to compare with, and they pass saying so."""
    parsed = plan.parsed
    outcome = ReleaseOutcome(blocking=[plan.blocks(g) for g in parsed])
    model = next((r.model for r in plan.registrations), None)
    if model is not None and client is not None:  # also for the report's comparison
        outcome.champion = gates.champion_of(client, model)
    outcome.results = gates.check(parsed, metrics, outcome.champion)
    return outcome


def release(plan: ReleasePlan, metrics: Mapping[str, float], client: Any,
            source: Callable[[Registration], ModelSource],
            say: Callable[[str], None] = lambda line: None) -> ReleaseOutcome:
    """Judge the gates; unless a quality gate failed, register each step's model (`source`
    says where it was logged) as `challenger`, and promote it when the gates against the
    champion passed. Each verdict and step goes to `say` as it is known (waiting for the
    model's store can take a while). Raises nothing for a failed gate: the caller fails the
    pipeline with `outcome.error(...)`; the registry's own errors pass through."""
    from jupyter_mlops.models import registry

    outcome = judge(plan, metrics, client)
    for result in outcome.results:
        say(result.message)
    note = _noter(outcome, say)
    if outcome.failed:
        if plan.registrations:
            note("not registered: a gate failed")
        return outcome
    for entry in plan.registrations:
        if client is not None:
            say(f"registering {entry.model} from step {entry.step!r}...")
        found = source(entry) if client is not None else ModelSource(None, "tracking is off")
        if found.uri is None:
            note(f"{entry.model}: not registered, {found.reason}")
            continue
        version = registry.register(found.uri, entry.model, alias=CHALLENGER, store=client,
                                    tags=gates.verdict_tags(outcome.results))
        outcome.registered[entry.model] = version.version
        note(f"registered {version.label} as @{CHALLENGER}")
        if entry.promote:
            _promote(outcome, entry, version.version, client, note)
    return outcome


def _noter(outcome: ReleaseOutcome, say: Callable[[str], None]) -> Callable[[str], None]:
    def note(line: str) -> None:
        outcome.notes.append(line)
        say(line)
    return note


def _promote(outcome: ReleaseOutcome, entry: Registration, version: int, client: Any,
             note: Callable[[str], None]) -> None:
    from jupyter_mlops.models import registry

    if not outcome.beats_champion:
        holder = outcome.champion.label if outcome.champion else CHAMPION
        note(f"not promoted to @{entry.promote}: {entry.model} v{version} does not beat {holder}")
        return
    promotion = registry.promote(entry.model, to=entry.promote or CHAMPION, version=version,
                                 store=client)
    note(promotion.message())


def release_pipeline_run(plan: ReleasePlan, metrics: Mapping[str, float], tracking_uri: str,
                         experiment: str, pipeline_run: str) -> ReleaseOutcome:
    """The gate task of a compiled pipeline (kfp/gate.py): the same release, each step's model
    found by the tags the KFP steps put on their MLflow runs. Prints what it decided; raises
    GateFailed, which fails the task and the KFP run, when a quality gate failed."""
    client = None
    if tracking_uri:
        from jupyter_mlops.tracking.destination import open_client

        client = open_client(tracking_uri)
    outcome = release(plan, metrics, client,
                      lambda entry: _step_run_model(client, experiment, pipeline_run, entry),
                      say=print)
    if outcome.failed:
        raise outcome.error(f"pipeline run {pipeline_run}")
    return outcome


def _step_run_model(client: Any, experiment: str, pipeline_run: str,
                    entry: Registration) -> ModelSource:
    from jupyter_mlops.steps import mlflow_vocabulary as vocab

    found = vocab.find_experiment(client, experiment)
    runs = client.search_runs([found.experiment_id], (
        f"tags.`{vocab.PIPELINE_RUN_TAG}` = '{pipeline_run}' and "
        f"tags.`{vocab.STEP_TAG}` = '{entry.step}' and "
        f"tags.`{vocab.KIND_TAG}` = '{vocab.KIND_STEP}'")) if found is not None else []
    if not runs:
        return ModelSource(None, f"step {entry.step!r} has no MLflow run in experiment "
                                 f"{experiment!r}")
    return ModelSource(f"runs:/{runs[0].info.run_id}/{entry.variable}")
