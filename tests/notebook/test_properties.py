"""Property: any tag layout gives an acyclic graph whose order respects every edge, or a
cycle error whose steps really form a cycle."""

from __future__ import annotations

from conftest import graph_of
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_mlops.errors import GraphError


@st.composite
def layouts(draw):
    count = draw(st.integers(1, 8))
    cells = []
    for i in range(count):
        reads = draw(st.sets(st.integers(0, count - 1), max_size=3))
        needs = draw(st.sets(st.integers(0, count - 1), max_size=2))
        body = f"v{i} = 0" + "".join(f" + v{j}" for j in sorted(reads) if j != i)
        tags = [f"step:s{i}"] + [f"needs:s{j}" for j in sorted(needs) if j != i]
        cells.append((body, tags))
        if draw(st.booleans()):
            cells.append((f"w{i} = v{i}", []))  # an untagged cell joins step s{i}
    return cells


def dependencies(cells):
    """Who must run before whom, from the layout itself, independently of the builder."""
    deps = {}
    current = None
    for body, tags in cells:
        for tag in tags:
            if tag.startswith("step:"):
                current = tag[5:]
                deps[current] = set()
            elif tag.startswith("needs:"):
                deps[current].add(tag[6:])
        for token in body.replace("+", " ").split()[2:]:
            if token.startswith("v") and int(token[1:]) < int(current[1:]):
                deps[current].add(f"s{token[1:]}")
    return deps


@settings(max_examples=150, deadline=None)
@given(layouts())
def test_graph_is_acyclic_and_ordered_or_the_cycle_is_real(cells):
    deps = dependencies(cells)
    try:
        graph = graph_of(cells)
    except GraphError as error:
        cycle = list(error.steps)
        assert cycle[0] == cycle[-1] and len(cycle) >= 2
        for before, after in zip(cycle, cycle[1:], strict=False):
            assert before in deps[after]  # each step in the cycle really waits for the previous
        return
    position = {step.name: i for i, step in enumerate(graph.order())}
    for edge in graph.edges:
        assert position[edge.source] < position[edge.target]
    for step in graph.steps:
        assert set(step.upstream) == deps[step.name]
