"""The gate grammar and its verdict: `accuracy>=0.8`, `f1>=champion`, `auc>=champion+0.01`.

One home for the syntax of a condition on metrics, whoever writes it: a `gate:` tag (checked
at graph time by the notebook layer), `promote --if` (models/), and the gate that runs after a
local pipeline's steps or inside a compiled KFP pipeline. Only the standard library, so a KFP
component can carry this file; reading the champion's metrics from MLflow is models/gates.py's.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

CHAMPION = "champion"  # the alias a relative threshold compares with

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}

_UNSIGNED = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_GATE = re.compile(
    r"(?P<metric>[A-Za-z_][A-Za-z0-9_.\-/]*)\s*(?P<op>>=|<=|==|>|<)\s*"
    rf"(?:(?P<champion>{CHAMPION})\s*(?:(?P<sign>[+-])\s*(?P<margin>{_UNSIGNED}))?"
    rf"|(?P<value>[+-]?{_UNSIGNED}))")
EXAMPLES = "accuracy>=0.8, f1>=champion, auc>=champion+0.01"
_VERDICT = re.compile(r"gate (?P<gate>.+?): (?P<verdict>passed|failed)\b")  # evaluate's message


class GateSyntaxError(ValueError):
    """A condition that does not parse; the message quotes it. Callers say where it was written
    (the cell of a `gate:` tag, the `--if` option)."""


@dataclass(frozen=True)
class Gate:
    """`metric op value`, or `metric op champion+margin` when `relative`."""

    metric: str
    op: str
    value: float = 0.0  # the fixed threshold, or the margin added to the champion's value
    relative: bool = False
    text: str = ""

    def threshold(self, champion: Mapping[str, float] | None) -> float | None:
        """The number the metric is compared with; None when the champion has no such metric."""
        if not self.relative:
            return self.value
        if champion is None or self.metric not in champion:
            return None
        return float(champion[self.metric]) + self.value

    def __str__(self) -> str:
        return self.text or _spell(self)


@dataclass(frozen=True)
class GateResult:
    """The verdict of one gate: the metric's value, the threshold it met or missed, and why."""

    gate: Gate
    value: float | None  # None: the pipeline reported no such metric
    threshold: float | None  # None: no champion to compare with (the gate passes)
    passed: bool
    message: str

    @property
    def metric(self) -> str:
        return self.gate.metric

    def __str__(self) -> str:
        return self.message


def parse_gate(text: str) -> Gate:
    """One condition; raises GateSyntaxError quoting `text` and the forms it may take."""
    match = _GATE.fullmatch(text.strip())
    if match is None:
        raise GateSyntaxError(f"{text!r} is not a gate: write METRIC OP NUMBER or METRIC OP "
                              f"champion[+-NUMBER], OP one of {' '.join(OPERATORS)} "
                              f"(e.g. {EXAMPLES})")
    if match["champion"]:
        margin = float(match["margin"] or 0.0) * (-1 if match["sign"] == "-" else 1)
        return Gate(match["metric"], match["op"], margin, True, text.strip())
    value = float(match["value"])
    if not math.isfinite(value):
        raise GateSyntaxError(f"{text!r}: the threshold must be a finite number")
    return Gate(match["metric"], match["op"], value, False, text.strip())


def parse_when(text: str) -> Gate:
    """A `when:` condition: the gate grammar on an earlier value or metric, compared with a
    number (`drift_max_psi>0.25`); there is no champion to compare with before a step runs."""
    try:
        gate = parse_gate(text)
    except GateSyntaxError:
        raise GateSyntaxError(f"{text!r} is not a condition: write NAME OP NUMBER, OP one of "
                              f"{' '.join(OPERATORS)} (e.g. drift_max_psi>0.25)") from None
    if gate.relative:
        raise GateSyntaxError(f"{text!r}: a when: condition compares a value with a number "
                              f"(e.g. drift_max_psi>0.25), not with the {CHAMPION}")
    return gate


def holds(gate: Gate, value: object) -> bool:
    """Whether a `when:` condition holds for `value`; GateSyntaxError when it is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            number = float(value)  # type: ignore[arg-type]  # numpy scalars, 0-d arrays
        except (TypeError, ValueError):
            raise GateSyntaxError(f"when:{gate}: {gate.metric} is a {type(value).__name__}, "
                                  "not a number") from None
    else:
        number = float(value)
    return OPERATORS[gate.op](number, gate.value)


def parse_gates(text: str) -> list[Gate]:
    """Conditions joined by commas or `and`: `accuracy>=0.8 and f1>=champion`."""
    parts = [p for p in re.split(r",|\s+and\s+", text) if p.strip()]
    if not parts:
        raise GateSyntaxError(f"no condition in {text!r} (e.g. {EXAMPLES})")
    return [parse_gate(part) for part in parts]


def evaluate(gate: Gate, metrics: Mapping[str, float],
             champion: Mapping[str, float] | None = None,
             against: str = CHAMPION) -> GateResult:
    """Judge `gate` on `metrics`; `champion` holds the champion's metrics (None: no champion,
    which passes and says so). `against` names the champion in the message ("churn v3")."""
    value = metrics.get(gate.metric)
    if value is None:
        return GateResult(gate, None, None, False, f"gate {gate}: failed, the run "
                          f"reported no metric {gate.metric!r}")
    value = float(value)
    threshold = gate.threshold(champion)
    if threshold is None:
        why = (f"no {CHAMPION} to compare with" if champion is None
               else f"{against} has no metric {gate.metric!r}")
        return GateResult(gate, value, None, True, f"gate {gate}: passed, {gate.metric} = "
                          f"{value:g}; {why}")
    passed = OPERATORS[gate.op](value, threshold)
    base = ""
    if gate.relative:
        assert champion is not None  # a relative threshold came from it
        margin = f" {'+' if gate.value >= 0 else '-'} {abs(gate.value):g}" if gate.value else ""
        base = f" ({against}'s {gate.metric} {float(champion[gate.metric]):g}{margin})"
    verdict = "passed" if passed else "failed"
    return GateResult(gate, value, threshold, passed, f"gate {gate}: {verdict}, {gate.metric} = "
                      f"{value:g}, threshold {gate.op} {threshold:g}{base}")


def read_verdict(message: str) -> tuple[str, bool] | None:
    """The gate and whether it passed, read back from a verdict's message as `evaluate` wrote
    it (kept as text on a model version's tags); None for any other text."""
    match = _VERDICT.match(message)
    return (match["gate"], match["verdict"] == "passed") if match else None


def _spell(gate: Gate) -> str:
    if not gate.relative:
        return f"{gate.metric}{gate.op}{gate.value:g}"
    margin = f"{'+' if gate.value >= 0 else '-'}{abs(gate.value):g}" if gate.value else ""
    return f"{gate.metric}{gate.op}{CHAMPION}{margin}"
