"""The tag grammar as a table: each rule pairs a tag pattern with what it does to a cell.

Both dialects live in the one table: jupyter-mlops' own tags and Kubeflow Kale's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from jupyter_mlops.errors import close_match
from jupyter_mlops.notebook.model import SecretEnv, VolumeMount
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


def _mapping(name: str, check: Callable[[str, str], None]) -> Action:
    def apply(tags: CellTags, match: re.Match[str]) -> None:
        check(match["key"], match["value"])
        tags.mappings.setdefault(name, {})[match["key"]] = match["value"]

    return apply


def _platform(name: str, parse: Callable[[str], object]) -> Action:
    """secret:/volume: tags add up, in the cell's order, into a tuple of StepOptions' field."""
    def apply(tags: CellTags, match: re.Match[str]) -> None:
        found = tags.options.get(name, ())
        assert isinstance(found, tuple)
        tags.options[name] = (*found, parse(match["value"]))

    return apply


def _refuse(reason: str) -> Action:
    """A Kale tag whose effect jupyter-mlops cannot give: refused with the reason, not ignored
    while the pipeline silently differs from Kale's."""
    def apply(tags: CellTags, match: re.Match[str]) -> None:
        raise TagValueError(reason)

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


# Kubernetes' own name rules, so a bad name fails at graph time, not when the pod is created.
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
MAX_SUBDOMAIN, MAX_LABEL = 253, 63


def _check(field: str, value: str, pattern: re.Pattern[str], rule: str,
           longest: int = MAX_SUBDOMAIN) -> None:
    """Raise TagValueError naming the field when `value` breaks Kubernetes' rule for it."""
    if not value:
        raise TagValueError(f"the {field} is empty")
    if len(value) > longest or not pattern.fullmatch(value):
        raise TagValueError(f"the {field} {value[:70]!r} is not valid: {rule}")


_SUBDOMAIN_RULE = (f"lowercase letters, digits, '-' and '.', up to {MAX_SUBDOMAIN} characters, "
                   "starting and ending with a letter or digit")


def _secret(value: str) -> SecretEnv:
    parts = value.split(":")
    if len(parts) != 3:
        raise TagValueError("expected secret:NAME:KEY:ENV (the Secret, its key, the environment "
                            "variable the step reads)")
    name, key, env = parts
    _check("secret name", name, _DNS_SUBDOMAIN, _SUBDOMAIN_RULE)
    _check("secret key", key, _SECRET_KEY, "letters, digits, '-', '_' and '.'")
    _check("environment variable", env, _ENV_NAME, "letters, digits and '_', not starting "
           "with a digit")
    return SecretEnv(name, key, env)


def _volume(value: str) -> VolumeMount:
    pvc, sep, path = value.partition(":")
    if not sep:
        raise TagValueError("expected volume:PVC:/mount/path")
    _check("PersistentVolumeClaim name", pvc, _DNS_SUBDOMAIN, _SUBDOMAIN_RULE)
    if not path.startswith("/") or ":" in path or "\x00" in path:
        raise TagValueError(f"the mount path {path[:70]!r} is not valid: an absolute path "
                            "such as /data, without ':'")
    return VolumeMount(pvc, path)


def _qualified_name(key: str) -> None:
    """A label or annotation key: an optional DNS-subdomain prefix and '/', then a name."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        _check("key prefix", prefix, _DNS_SUBDOMAIN, _SUBDOMAIN_RULE)
    _check("key", name, _LABEL_NAME, f"letters, digits, '-', '_' and '.', up to {MAX_LABEL} "
           "characters, starting and ending with a letter or digit (an optional prefix "
           "such as example.com/ before it)", MAX_LABEL)


def _label(key: str, value: str) -> None:
    _qualified_name(key)
    if len(value) > MAX_LABEL or not _LABEL_NAME.fullmatch(value):
        raise TagValueError(f"the label value {value[:70]!r} is not valid: letters, digits, "
                            f"'-', '_' and '.', up to {MAX_LABEL} characters, starting and "
                            "ending with a letter or digit")


def _annotation(key: str, value: str) -> None:
    _qualified_name(key)  # any value: annotations hold free text


def _limit(key: str, value: str) -> None:
    if key not in ("cpu", "memory"):
        _qualified_name(key)  # an extended resource such as nvidia.com/gpu
    if not _QUANTITY.match(value):
        raise TagValueError(f"the limit {value[:20]!r} is not a Kubernetes quantity such as 2 "
                            "or 4Gi")


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
        (r"limit:(?P<key>[^:]+):(?P<value>.+)", BOTH, _mapping("limits", _limit),
         "limit:memory:4Gi"),
        (r"annotation:(?P<key>[^:]+):(?P<value>.*)", BOTH, _mapping("annotations", _annotation),
         "annotation:owner:data-team"),
        (r"label:(?P<key>[^:]+):(?P<value>.*)", BOTH, _mapping("labels", _label),
         "label:team:ml"),
        (r"secret:(?P<value>.+)", MLOPS, _platform("secrets", _secret),
         "secret:db-credentials:password:DB_PASSWORD"),
        (r"volume:(?P<value>.+)", MLOPS, _platform("volumes", _volume), "volume:data-pvc:/data"),
        (r"notebook:.*", KALE, _refuse(
            "Kale 2.3 composes the notebook this cell references into the pipeline; "
            "jupyter-mlops compiles one notebook at a time: compile that notebook on its own, "
            "or copy its steps into this one"), "notebook:prepare"),
    ]
)

# Prefixes of known tags, to tell a malformed known tag from a tag meant for something else.
_KNOWN_PREFIXES = ("needs:", "prev:", "cache:", "retries:", "timeout:", "image:", "resources:",
                   "model:", "register:", "promote:", "gate:", "when:", "limit:", "annotation:",
                   "label:", "secret:", "volume:")


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


# Our tag names (before ':'), each with whether it takes a value, to spot a misspelt tag.
_OUR_NAMES = {r.example.split(":", 1)[0]: ":" in r.example for r in TAG_RULES if r.dialect != KALE}
# difflib's default 0.6 takes papermill's `injected-parameters` and `popout` for ours; 0.75 not.
_CLOSE = 0.75


def suggest_tag(tag: str) -> str | None:
    """The tag of ours an unknown `tag` looks like a misspelling of (`stpe:features`,
    `step features`: 'step:features'), or None for a tag meant for another tool."""
    name, *rest = re.split(r"[:\s=]+", tag.strip(), maxsplit=1)
    close = close_match(name, _OUR_NAMES, cutoff=_CLOSE)
    if close is None:
        return None
    value = rest[0] if rest else ""
    return f"{close}:{value}" if _OUR_NAMES[close] and value else close


def _example(tag: str) -> str:
    prefix = tag.split(":", 1)[0]
    return next(r.example for r in TAG_RULES if r.example.startswith(prefix + ":"))
