"""What a local pipeline run is given: its options (what `jupyter-mlops run` and `run_pipeline`
accept) and its parameters: defaults, then `-f params.yaml`, then `-p NAME VALUE`.

Every value is read by the one grammar of jupyter_mlops.notebook.parameters (by the type of
the parameters cell's literal default), before any step runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from jupyter_mlops.errors import ParameterError, ParametersFileError, reason_of
from jupyter_mlops.notebook import StepGraph, parameter_values
from jupyter_mlops.notebook.reader import read_bounded


@dataclass(frozen=True)
class RunOptions:
    """How to run a notebook as a pipeline. Every field has a default that suits a first run.

    `parameters` are typed values, `cli_parameters` (NAME, TEXT) pairs as `-p` gives them; both
    override `params_file`.
    """

    parameters: Mapping[str, Any] = field(default_factory=dict)  # typed parameter values
    params_file: str | Path | None = None  # a YAML file of name: value parameters
    cli_parameters: tuple[tuple[str, str], ...] = ()  # (NAME, TEXT) pairs read by declared type
    jobs: int | None = None  # steps running at the same time; None: the CPU count
    cache: bool = True  # False: run every step, even when a cached result matches
    from_step: str | None = None  # run this step and everything after it, upstream from cache
    only: str | None = None  # run only this step, its inputs from cache
    out: str | Path | None = None  # folder for runs/ and cache/; None: ./.mlops
    track: bool = True  # log the pipeline and its steps as MLflow runs
    tracking_uri: str | None = None  # the MLflow store; None: the configured one
    quiet: bool = False  # print no progress lines
    stream: IO[str] | None = None  # where progress lines go; None: stderr
    listeners: tuple[Any, ...] = ()  # told of each step as it starts and settles (a Listener)
    fresh_kernels: bool = False  # a new kernel per step instead of a reset, reused one
    wait_for_store: bool = True  # False: return at once, a sender process delivers the records
    report: str | Path | None = None  # write a Markdown summary here (runner/report.py), for CI

    @property
    def workers(self) -> int:
        """How many steps may run at once."""
        return self.jobs or os.cpu_count() or 1

    def parameter_values(self, graph: StepGraph) -> dict[str, Any]:
        """Every parameter's value: defaults, the params file, `parameters`, `cli_parameters`."""
        given = params_file_values(graph, self.params_file) if self.params_file else {}
        given.update(self.parameters)
        return resolve(graph, given, list(self.cli_parameters))


MAX_FILE_BYTES = 16 * 2**20
MAX_VALUES = 100_000  # values in the file once its aliases are expanded


def params_file_values(graph: StepGraph, path: str | Path) -> dict[str, Any]:
    """The values in a params.yaml file, each checked against the notebook's parameters;
    errors name the file, and the parameter and notebook at fault."""
    data = read_params_file(path)
    try:
        return parameter_values(graph.parameters, data, graph.path)
    except ParameterError as error:
        raise ParametersFileError(str(path), f"parameter {error.name!r}: {error.reason}",
                                  graph.path) from None


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a params.yaml file; a FIFO, a huge file or aliases that expand past
    MAX_VALUES (a "billion laughs" file) are refused before anything is built from them."""
    try:
        data = _load_yaml(read_bounded(Path(path), MAX_FILE_BYTES).decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ParametersFileError(str(path), f"not UTF-8 text: {error}") from None
    except (OSError, yaml.YAMLError, ValueError, RecursionError) as error:
        # ValueError: an integer of more digits than Python reads; RecursionError: deep nesting
        raise ParametersFileError(str(path), "cannot read it: "
                                  f"{reason_of(error).split(';')[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParametersFileError(str(path), "a parameters file holds a mapping of name: value")
    return data


def _load_yaml(text: str) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """Count the values `root` stands for with every alias expanded (sizes memoised per node)
    and refuse an alias that contains itself. A stack, no recursion: nesting may be deep."""
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _children(node)
        if done:
            open_ids.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[id(node)] > MAX_VALUES:
                raise ValueError(f"its aliases expand to more than {MAX_VALUES:,} values "
                                 "(anchors nested in anchors), refused")
        elif id(node) in open_ids:
            raise ValueError(f"an anchor refers to itself (line {node.start_mark.line + 1})")
        elif id(node) not in sizes:
            open_ids.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def resolve(graph: StepGraph, given: Mapping[str, Any] | None = None,
            cli_pairs: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """Every parameter's value: defaults, then `given` (data), then `cli_pairs` (text)."""
    values = {name: p.default for name, p in graph.parameters.items()}
    values.update(parameter_values(graph.parameters, given or {}, graph.path))
    values.update(parameter_values(graph.parameters, cli_pairs, graph.path))
    return values
