"""Sweeps and the sweep form read values by the one parameter grammar, as `-p` does.

The shared cases of tests/data/parameters (the same ones the runner, KFP and REST tests run):
a grid's text values and the form's fields are read by the parameters' declared types; a
refusal is a SweepError with the grammar's message, before any run starts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from jupyter_mlops.errors import SweepError
from jupyter_mlops.widgets import sweep, sweep_form

PARAMS = Path(__file__).resolve().parents[1] / "data" / "parameters"
CASES = json.loads((PARAMS / "cases.json").read_text())
NOTEBOOK = CASES["notebook"]
TEXT_CONTROLS = {"cfg", "features", "model_name"}  # the form holds these as text fields


@pytest.fixture
def churn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(PARAMS / NOTEBOOK, tmp_path / NOTEBOOK)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fill(form, given: dict[str, str]) -> None:  # noqa: ANN001
    """Type each text where a user would: a text control, else the "sweep over" field."""
    for name, text in given.items():
        (form.controls if name in TEXT_CONTROLS else form.values)[name].value = text


@pytest.mark.parametrize("case", CASES["refused"],
                         ids=[f"{c['name']}={c['text']}" for c in CASES["refused"]])
def test_a_refused_value_stops_the_sweep_with_the_grammars_message(recorder, store, churn,
                                                                   case):
    with pytest.raises(SweepError) as caught:
        sweep(NOTEBOOK, {case["name"]: [case["text"]]}, tracking_uri=store.uri)
    assert str(caught.value) == f"{churn / NOTEBOOK}: {case['message']}"
    if case["name"] != "epochs":  # the form has a field for every parameter, and only those
        form = sweep_form(NOTEBOOK, tracking_uri=store.uri)
        _fill(form, {case["name"]: case["text"]})
        with pytest.raises(SweepError) as caught:
            form.grid()
        assert str(caught.value) == f"{NOTEBOOK}: {case['message']}"
        recorder.click(form.run_button.model_id)
        assert form.sweep is None and case["message"] in form.message.value
    assert not (churn / ".mlops").exists()  # nothing ran


@pytest.mark.parametrize("case", CASES["accepted"], ids=["literals", "json"])
def test_the_forms_text_is_read_by_the_declared_type(recorder, churn, case):
    form = sweep_form(NOTEBOOK)
    _fill(form, case["given"])
    assert form.grid() == {name: [value] for name, value in case["values"].items()}


def test_a_sweep_of_text_values_runs_them_typed(recorder, store, churn):
    case = CASES["accepted"][0]
    view = sweep(NOTEBOOK, case["given"], jobs=1, tracking_uri=store.uri,
                 experiment="churn-grammar", browse=False, wait=True)
    (run,) = view.runs
    assert run.status == "FINISHED", run.error
    assert run.params == case["values"]
    executed = nbformat.read(run.output, as_version=4)
    assert executed.metadata.papermill.parameters == case["values"]
    stored = store.client.get_run(run.run_id).data.params
    assert stored["C"] == "0.001" and stored["cfg"] == '{"class_weight": null}'
