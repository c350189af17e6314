"""Plain results of a pipeline run and of each step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlops.errors import StepFailed

# Step states; the run's exit code follows from them.
OK, CACHED, FAILED, SKIPPED, KILLED = "ok", "cached", "failed", "skipped", "killed"
# Exit codes of a run: a step failed, a gate failed (the steps ran), interrupted.
STEP_FAILED_EXIT, GATE_FAILED_EXIT, INTERRUPTED_EXIT = 1, 3, 130


@dataclass
class StepResult:
    name: str
    status: str
    started: float = 0.0  # epoch seconds
    duration: float = 0.0
    cache_key: str | None = None
    notebook: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    error: StepFailed | None = None
    reason: str = ""  # why skipped or killed
    conditional: bool = False  # skipped by a when: condition (its own or upstream): no failure
    attempts: int = 0
    inputs: dict[str, str] = field(default_factory=dict)  # value read -> the step that wrote it

    @property
    def cache_hit(self) -> bool:
        return self.status == CACHED

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "started": self.started, "duration": round(self.duration, 3),
            "cache_key": self.cache_key, "cache_hit": self.cache_hit,
            "notebook": str(self.notebook) if self.notebook else None,
            "metrics": self.metrics, "parameters": self.parameters, "reason": self.reason,
            "attempts": self.attempts,
            "error": None if self.error is None else {
                "message": str(self.error), "cell_index": self.error.cell_index,
                "source_line": self.error.source_line, "traceback": self.error.traceback},
        }


@dataclass
class PipelineResult:
    run_id: str
    run_dir: Path
    notebook: str
    parameters: dict[str, Any]
    steps: dict[str, StepResult]
    started: float
    duration: float = 0.0
    interrupted: bool = False
    mlflow_run_id: str | None = None  # None until the sender created it, when not waited for
    mlflow_experiment: str | None = None  # where the tracked run goes
    tracking_uri: str | None = None
    release: Any = None  # models/release.py's ReleaseOutcome: gate verdicts, registrations
    gate_error: Any = None  # models/gates.py's GateFailed when a quality gate failed

    @property
    def steps_ok(self) -> bool:
        return not self.interrupted and all(s.status in (OK, CACHED) or s.conditional
                                            for s in self.steps.values())

    @property
    def ok(self) -> bool:
        return self.steps_ok and self.gate_error is None

    @property
    def status(self) -> str:
        return "killed" if self.interrupted else "ok" if self.ok else "failed"

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return INTERRUPTED_EXIT
        if not self.steps_ok:
            return STEP_FAILED_EXIT
        return GATE_FAILED_EXIT if self.gate_error is not None else 0

    @property
    def failures(self) -> list[StepFailed]:
        return [s.error for s in self.steps.values() if s.error is not None]

    @property
    def metrics(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for step in self.steps.values():
            found.update(step.metrics)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "notebook": self.notebook, "status": self.status,
            "started": self.started, "duration": round(self.duration, 3),
            "parameters": self.parameters, "metrics": self.metrics,
            "mlflow_run_id": self.mlflow_run_id, "mlflow_experiment": self.mlflow_experiment,
            "tracking_uri": self.tracking_uri,
            "gates": [{"gate": str(r.gate), "metric": r.metric, "value": r.value,
                       "threshold": r.threshold, "passed": r.passed, "message": r.message}
                      for r in (self.release.results if self.release else [])],
            "steps": {name: step.to_dict() for name, step in self.steps.items()},
        }
