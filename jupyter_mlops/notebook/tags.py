"""The tag grammar as a table: each rule pairs a tag pattern with what it does to a cell.

Both dialects live in the one table: jupyter-mlops' own tags and Kubeflow Kale's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from jupyter_mlops.steps.gates import Gate, parse_gate, parse_when

MLOPS, KALE, BOTH = "mlops", "kale", "both"


@dataclass
class CellTags:
    """What the tags of one cell say, once every rule has been applied."""

    roles: set[str] = field(default_factory=set)  # parameters, setup, skip, metrics, kale-metrics
    steps: list[str] = field(default_factory=list)  # step names; "" continues the previous step
    needs: list[str] = field(default_factory=list)
    options: dict[str, object] = field(default_factory=dict)  # StepOptions field -> value
    mappings: dict[str, dict[str, str]] = field(default_factory=dict)  # limits/labels/annotations
    unknown: list[str] = field(default_factory=list)
    dialects: set[str] = field(default_factory=set)
    gates: list[Gate] = field(default_factory=list)  # gate:EXPR, in the cell's order


class TagValueError(ValueError):
    """A known tag with a value it cannot take; the caller names the cell."""


Action = Callable[[CellTags, re.Match[str]], None]


@dataclass(frozen=True)
class TagRule:
    pattern: re.Pattern[str]
    dialect: str
    action: Action
    example: str


def _role(name: str) -> Action:
    def apply(tags: CellTags, match: re.Match[str]) -> None:
        tags.roles.add(name)

    return apply


def _step(tags: CellTags, match: re.Match[str]) -> None:
    tags.steps.append(match["name"])


def _needs(tags: CellTags, match: re.Match[str]) -> None:
    names = [n.strip() for n in match["names"].split(",")]
    if not all(names):
        raise TagValueError(f"empty step name in {match.group(0)!r}")
    tags.needs.extend(names)


def _option(name: str, convert: Callable[[str], object]) -> Action:
    def apply(tags: CellTags, match: re.Match[str]) -> None:
        tags.options[name] = convert(match["value"])

    return apply


def _gate(tags: CellTags, match: re.Match[str]) -> None:
    tags.gates.append(parse_gate(match["value"]))  # its GateSyntaxError quotes the condition


def _mapping(name: str) -> Action:
    def apply(tags: CellTags, match: re.Match[str]) -> None:
        tags.mappings.setdefault(name, {})[match["key"]] = match["value"]

    return apply


def _add_resources(tags: CellTags, match: re.Match[str]) -> None:
    """Several resources: tags add up (nbformat's schema rejects commas inside one tag)."""
    found = tags.options.setdefault("resources", {})
    assert isinstance(found, dict)
    found.update(_resources(match["value"]))


def _cache(value: str) -> bool:
    return value in ("on", "enabled")


# Bounds a runner and a cluster can honour: retries beyond a few are a loop, a watchdog timer
# (threading, SIGALRM, KFP's protobuf Duration) cannot be armed for centuries, KFP's accelerator
# limit is a whole number.
MAX_RETRIES = 100
MAX_TIMEOUT = 30 * 24 * 3600.0  # 30 days, in seconds
MAX_GPUS = 1024


def _retries(value: str) -> int:
    number = int(value)
    if number > MAX_RETRIES:
        raise TagValueError(f"retries must be at most {MAX_RETRIES}, not {value[:20]}")
    return number


def _positive_number(value: str) -> float:
    number = float(value)
    if not 0 < number <= MAX_TIMEOUT:
        raise TagValueError(f"timeout must be a positive number of seconds up to "
                            f"{MAX_TIMEOUT:.0f} (30 days), not {value[:20]!r}")
    return number


RESOURCE_KEYS = ("cpu", "memory", "gpu")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")


def _resources(value: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in value.split(","):
        key, sep, amount = item.partition("=")
        key, amount = key.strip(), amount.strip()
        if not sep or key not in RESOURCE_KEYS:
            raise TagValueError(f"resources take cpu=..,memory=..,gpu=.., not {item!r}")
        if not _QUANTITY.match(amount):
            raise TagValueError(f"{key}={amount[:20]!r} is not a Kubernetes quantity such as 2 "
                                "or 4Gi")
        if key == "gpu" and not (amount.isdigit() and int(amount) <= MAX_GPUS):
            raise TagValueError(f"gpu takes a whole number of GPUs up to {MAX_GPUS}, "
                                f"not {amount[:20]!r}")
        found[key] = amount
    return found



# The grammar. Patterns match the whole tag; the first matching rule applies.
TAG_RULES: tuple[TagRule, ...] = tuple(
    TagRule(re.compile(pattern), dialect, action, example)
    for pattern, dialect, action, example in [
        (r"parameters", MLOPS, _role("parameters"), "parameters"),
        (r"pipeline-parameters", KALE, _role("parameters"), "pipeline-parameters"),
        (r"step:(?P<name>.*)", BOTH, _step, "step:train"),
        (r"block:(?P<name>.*)", KALE, _step, "block:train"),
        (r"needs:(?P<names>.*)", MLOPS, _needs, "needs:load,features"),
        (r"prev:(?P<names>.*)", KALE, _needs, "prev:load"),
        (r"setup", MLOPS, _role("setup"), "setup"),
        (r"imports|functions", KALE, _role("setup"), "imports"),
        (r"skip", BOTH, _role("skip"), "skip"),
        (r"metrics", MLOPS, _role("metrics"), "metrics"),
        (r"pipeline-metrics", KALE, _role("kale-metrics"), "pipeline-metrics"),
        (r"cache:(?P<value>off|on)", MLOPS, _option("cache", _cache), "cache:off"),
        (r"cache:(?P<value>enabled|disabled)", KALE, _option("cache", _cache), "cache:disabled"),
        (r"retries:(?P<value>[0-9]+)", MLOPS, _option("retries", _retries), "retries:3"),
        (r"timeout:(?P<value>[0-9.]+)", MLOPS, _option("timeout", _positive_number), "timeout:600"),
        (r"image:(?P<value>\S+)", BOTH, _option("image", str), "image:python:3.11"),
        (r"resources:(?P<value>.+)", MLOPS, _add_resources, "resources:cpu=2"),
        (r"model:(?P<value>[A-Za-z_][A-Za-z0-9_]*)", MLOPS, _option("model", str), "model:forest"),
        (r"register:(?P<value>[A-Za-z0-9][A-Za-z0-9_.-]*)", MLOPS, _option("register", str),
         "register:churn-model"),
        (r"promote:(?P<value>[A-Za-z0-9][A-Za-z0-9_-]*)", MLOPS, _option("promote", str),
         "promote:champion"),
        (r"gate:(?P<value>.+)", MLOPS, _gate, "gate:accuracy>=0.8"),
        (r"when:(?P<value>.+)", MLOPS, _option("when", parse_when), "when:drift_max_psi>0.25"),
        (r"limit:(?P<key>[^:]+):(?P<value>.+)", KALE, _mapping("limits"), "limit:nvidia.com/gpu:1"),
        (r"annotation:(?P<key>[^:]+):(?P<value>.*)", KALE, _mapping("annotations"),
         "annotation:a:b"),
        (r"label:(?P<key>[^:]+):(?P<value>.*)", KALE, _mapping("labels"), "label:team:ml"),
    ]
)

# Prefixes of known tags, to tell a malformed known tag from a tag meant for something else.
_KNOWN_PREFIXES = ("needs:", "prev:", "cache:", "retries:", "timeout:", "image:", "resources:",
                   "model:", "register:", "promote:", "gate:", "when:", "limit:", "annotation:",
                   "label:")


def parse_tags(raw_tags: list[str] | tuple[str, ...]) -> CellTags:
    """Apply the grammar to one cell's tags. Raises TagValueError for a malformed known tag."""
    tags = CellTags()
    for raw in raw_tags:
        tag = raw.strip()
        rule = next((r for r in TAG_RULES if r.pattern.fullmatch(tag)), None)
        if rule is None:
            if tag.startswith(_KNOWN_PREFIXES):
                raise TagValueError(f"malformed tag {tag!r}; expected the form {_example(tag)!r}")
            tags.unknown.append(tag)
            continue
        match = rule.pattern.fullmatch(tag)
        assert match is not None  # the rule was chosen by this match
        try:
            rule.action(tags, match)
        except (ValueError, TypeError) as error:
            raise TagValueError(f"tag {tag!r}: {error}") from None
        if rule.dialect != BOTH:
            tags.dialects.add(rule.dialect)
    return tags


def _example(tag: str) -> str:
    prefix = tag.split(":", 1)[0]
    return next(r.example for r in TAG_RULES if r.example.startswith(prefix + ":"))
