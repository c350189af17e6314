"""The guess, made before a notebook is read, that a run will take every step from the cache."""

from __future__ import annotations

from jupyter_mlops.runner import rerun_hint
from jupyter_mlops.runner.options import RunOptions


def test_the_fingerprint_changes_with_every_input_it_covers(tmp_path):
    notebook, params = tmp_path / "n.ipynb", tmp_path / "p.yaml"
    notebook.write_text("{}")
    params.write_text("a: 1\n")
    base = dict(parameters={"a": 1}, params_file=params, cli_parameters=(("b", "2"),))
    key = rerun_hint.fingerprint(notebook, RunOptions(**base))
    assert key == rerun_hint.fingerprint(notebook, RunOptions(**base))
    variants = [{"parameters": {"a": 2}}, {"cli_parameters": (("b", "3"),)},
                {"from_step": "train"}, {"only": "train"}, {"params_file": None}]
    keys = {rerun_hint.fingerprint(notebook, RunOptions(**(base | change))) for change in variants}
    params.write_text("a: 2\n")
    keys.add(rerun_hint.fingerprint(notebook, RunOptions(**base)))
    notebook.write_text('{"cells": []}')
    keys.add(rerun_hint.fingerprint(notebook, RunOptions(**base)))
    assert key not in keys and len(keys) == len(variants) + 2


def test_remembered_inputs_are_seen_and_unreadable_ones_never(tmp_path):
    (tmp_path / "n.ipynb").write_text("{}")
    key = rerun_hint.fingerprint(tmp_path / "n.ipynb", RunOptions())
    assert not rerun_hint.seen(tmp_path / "cache", key)
    rerun_hint.remember(tmp_path / "cache", key)
    assert rerun_hint.seen(tmp_path / "cache", key)
    missing = rerun_hint.fingerprint(tmp_path / "gone.ipynb", RunOptions())
    assert missing is None and not rerun_hint.seen(tmp_path / "cache", missing)
