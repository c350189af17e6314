"""Which steps a run executes and how: from the cache when it can, always, or only from it."""

from __future__ import annotations

from jupyter_mlops.notebook import StepGraph
from jupyter_mlops.runner.errors import RunnerError

CACHE = "cache"  # reuse a cached result when the key matches, else run
FORCE = "force"  # run whatever the cache holds
REUSE = "reuse"  # must come from the cache (upstream of --only)


def make_plan(graph: StepGraph, cache: bool = True, from_step: str | None = None,
              only: str | None = None) -> dict[str, str]:
    """Step name -> mode, in topological order; steps left out do not run."""
    if from_step and only:
        raise RunnerError("--from and --only cannot be combined")
    for name in (from_step, only):
        if name is not None and name not in {s.name for s in graph.steps}:
            known = ", ".join(s.name for s in graph.steps)
            raise RunnerError(f"no step named {name!r} (steps: {known})")

    def normal(name: str) -> str:
        return CACHE if cache and graph.step(name).options.cache else FORCE

    if only:
        wanted = {only: FORCE} | {name: REUSE for name in graph.upstream_of(only)}
    elif from_step:
        forced = {from_step} | graph.downstream(from_step)
        needed = set(forced)
        for name in forced:
            needed |= graph.upstream_of(name)
        wanted = {name: FORCE if name in forced else normal(name) for name in needed}
    else:
        wanted = {step.name: normal(step.name) for step in graph.steps}
    return {step.name: wanted[step.name] for step in graph.order() if step.name in wanted}
