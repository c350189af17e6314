"""The run card's state and messages through a recording comm, its static fallback, and the
tracking magics' hook (`cell_card`) in a real kernel."""

from __future__ import annotations

import html
import re
import shutil

import nbformat
from nbclient import NotebookClient

from jupyter_mlops.widgets.fallback import WIDGET_MIME
from jupyter_mlops.widgets.run_card import RunCard, cell_card, duration_text, show_run_card

from .conftest import log_run


def test_card_opens_with_its_html_and_sends_each_update(recorder):
    card = RunCard(name="train", status="RUNNING")
    [opened] = recorder.opened("HTMLModel")
    assert opened.comm_id == card.model_id
    assert 'data-status="RUNNING"' in opened.data["state"]["value"]

    card.update(params={"C": 0.5}, metrics={"accuracy": 0.91})
    card.update(status="FINISHED", metrics={"f1": 0.8})

    sent = recorder.updates(card.model_id, "value")
    assert len(sent) == 2
    assert "accuracy=<b>0.91</b>" in sent[0] and 'data-status="RUNNING"' in sent[0]
    assert 'data-status="FINISHED"' in sent[1] and "f1=<b>0.8</b>" in sent[1]
    assert "C=<b>0.5</b>" in sent[1]  # merged, not replaced


def test_cards_share_one_layout_and_one_style(recorder):
    """A card is one widget on the wire, not three: each comm open costs the tracked cell."""
    first, second = RunCard(name="a"), RunCard(name="b")
    assert len(recorder.opened("HTMLModel")) == 2
    assert first.layout is second.layout and first.style is second.style
    assert len(recorder.opened("LayoutModel")) <= 1
    assert len(recorder.opened("HTMLStyleModel")) <= 1
    [opened] = [m for m in recorder.opened("HTMLModel") if m.comm_id == second.model_id]
    assert list(opened.data["state"]["_dom_classes"]) == ["mlops-run-card"]  # in the open


def test_finished_card_keeps_its_duration_and_shows_the_error(recorder):
    card = RunCard(name="cell-3")
    card.update(started=100.0, ended=102.5, status="FAILED", error="ValueError: bad <input>")
    assert card.duration == 2.5
    assert "2.5 s" in card.value
    assert "ValueError: bad &lt;input&gt;" in card.value  # escaped


def test_output_bundle_has_the_live_view_and_a_static_copy(recorder):
    card = RunCard(name="fit", status="FINISHED")
    bundle = card._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == card.model_id
    assert bundle["text/html"] == card.value
    assert 'data-status="FINISHED"' in bundle["text/html"]


def test_card_learns_its_run_id_from_the_tracking_writer(recorder):
    known: list[str] = []
    card = RunCard(name="late", client_or_uri="http://127.0.0.1:5999").follow(
        lambda: known[0] if known else None)
    assert card.run_id is None and "<a " not in card.value
    known.append("0123abcd")  # the writer created the MLflow run meanwhile
    card.finish("FINISHED", metrics={"loss": 0.25})
    assert card.status == "FINISHED" and card.run_id == "0123abcd"
    assert 'href="http://127.0.0.1:5999/#/runs/0123abcd"' in card.value
    assert "loss=<b>0.25</b>" in card.value


def test_card_shows_what_the_store_rejected_once_the_writer_knows(recorder):
    verdict: list[tuple[list[str], bool]] = [([], False)]
    card = RunCard(name="Tuned_Forest").watch(lambda: verdict[-1])
    card.finish("FINISHED", metrics={"accuracy": 0.875})
    assert "mlops-problems" not in card.value  # the store has not answered yet
    assert card._tick()  # so the card keeps asking

    verdict.append((["param 'C' = 2 rejected by the store: Changing param values is not "
                     "allowed", "kept in /spool/s.rejected.jsonl"], True))
    assert not card._tick()  # final: nothing more to wait for
    shown = recorder.updates(card.model_id, "value")[-1]
    assert 'data-status="FINISHED"' in shown and "mlops-problems" in shown
    assert "param &#x27;C&#x27; = 2 rejected by the store" in shown
    assert "kept in /spool/s.rejected.jsonl" in shown


def test_card_reads_a_real_run_and_links_to_it(recorder, store):
    experiment_id = store.experiment("cards")
    run_id = log_run(store.client, experiment_id, "forest", {"depth": 4},
                     {"accuracy": [0.5, 0.75]})

    card = show_run_card(run_id, store.client, display=False, tick=False)

    assert card.status == "FINISHED" and card.name == "forest"
    assert card.params == {"depth": "4"} and card.metrics == {"accuracy": 0.75}
    assert f"/#/experiments/{experiment_id}/runs/{run_id}" in card.value
    assert card.duration >= 0


def test_card_with_only_a_uri_waits_for_updates(recorder, store):
    card = show_run_card(None, store.uri, name="later", display=False, tick=False)
    assert card.status == "RUNNING" and card.run_id is None
    card.update(run_id="abc123", experiment_id="7")
    assert "/#/experiments/7/runs/abc123" in card.value


def test_no_card_outside_a_kernel(recorder):
    assert cell_card("cell-1", run_id="abc") is None  # pytest has no IPython kernel
    assert recorder.messages == []


HOOK_CELL = """\
from jupyter_mlops.widgets.run_card import cell_card
card = cell_card("train", run_id=lambda: "feedc0de", tracking_uri="http://127.0.0.1:5999",
                 params={"C": 0.5})
card.update(metrics={"accuracy": 0.875})
card.finish("FAILED", error="ValueError: diverged");
"""


def test_cell_card_in_a_kernel_saves_its_final_state_in_the_notebook(tmp_path):
    """What tracking's hook produces in a real kernel: one output, redrawn in place, which the
    executed notebook keeps as the final card's HTML (GitHub/nbviewer show it as is)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(HOOK_CELL)])
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    [output] = nb.cells[0].outputs
    assert output.output_type == "display_data"
    html = output.data["text/html"]
    assert 'data-status="FAILED"' in html and "ValueError: diverged" in html
    assert "accuracy=<b>0.875</b>" in html and "C=<b>0.5</b>" in html
    assert 'href="http://127.0.0.1:5999/#/runs/feedc0de"' in html
    assert WIDGET_MIME not in output.data  # no comm: two messages fewer on the cell's time
    assert "FAILED" in output.data["text/plain"]
    assert list(tmp_path.iterdir()) == []  # the card writes nothing


LATE_ID_CELLS = ["""\
import threading
from jupyter_mlops.widgets.run_card import cell_card
known = threading.Event()
card = cell_card("late", run_id=lambda: "0ddba11" if known.is_set() else None,
                 tracking_uri="http://127.0.0.1:5999")
card.finish("FINISHED", metrics={"accuracy": 0.5})
known.set()  # the tracking writer learns the run id after the cell's end
""", """\
import time  # the next cell runs on; the card's own thread rewrites the cell above
deadline = time.monotonic() + 60
while "0ddba11" not in card.static_html() and time.monotonic() < deadline:
    time.sleep(0.1)
"""]


def test_a_cell_card_gets_its_link_after_the_cell_ended(tmp_path):
    """The run id often arrives after a short cell ended: the card's output, in the cell above,
    is rewritten in place with the link (nbclient applies it as JupyterLab does)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in LATE_ID_CELLS])
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    [output] = nb.cells[0].outputs
    html = output.data["text/html"]
    assert 'data-status="FINISHED"' in html and "accuracy=<b>0.5</b>" in html
    assert 'href="http://127.0.0.1:5999/#/runs/0ddba11"' in html
    assert nb.cells[1].outputs == []


def test_card_names_its_model_and_then_what_the_store_made_of_it(recorder):
    fate: list[tuple[str, bool]] = [("", False)]
    card = RunCard(name="Random_Forest").watch_model("forest", lambda: fate[-1])
    card.finish("FINISHED", metrics={"accuracy": 0.875})
    assert "model:</span> <b>forest</b></div>" in card.value  # named before the store answers
    assert card._tick()  # and the card keeps asking

    fate.append(("registered Churn_Forest v3", True))
    assert not card._tick()
    shown = recorder.updates(card.model_id, "value")[-1]
    assert "<b>forest</b>" in shown and "&rarr; registered Churn_Forest v3" in shown


def test_a_rejected_model_is_said_in_red(recorder):
    card = RunCard(name="Threshold_Rule").watch_model(
        "rule", lambda: ("NOT STORED: rejected", True))
    card.finish("FINISHED")
    assert 'color:#d62728">&rarr; NOT STORED: rejected' in card.value


MODEL_CELLS = ["%load_ext jupyter_mlops\n%mlops start --experiment Churn_Cards", """\
%%mlops track Random_Forest --metrics accuracy --model forest --register Churn_Forest_Card
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
X, y = make_classification(n_samples=200, n_features=6, random_state=0)
forest = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
accuracy = forest.score(X, y)
""", """\
%%mlops track Gradient_Boosting --model boosting
from sklearn.ensemble import GradientBoostingClassifier
boosting = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
""", """\
%%mlops track Threshold_Rule --model rule
def _trained_here():
    raise RuntimeError("this rule loads only in the kernel that trained it")

class ThresholdRule:
    def __reduce__(self):  # as a model holding a live resource would
        return (_trained_here, ())

rule = ThresholdRule()
""", """\
%%mlops track Forgotten_Model --model knn
print("no knn defined")
""", """\
%%mlops track Typo_Param --params n_estimatrs --metrics acuracy
n_estimators, accuracy = 10, 0.5
for stage in range(3):
    %mlops log staged_accuracy={0.5 + stage / 10}
""", """\
%%mlops track Boom_Cell
raise ValueError("boom")
""", """\
%%mlops track --metrics auto --modle forest
print("the cell ran")
""", "%mlops end"]
RAISES = {6, 7}  # the cells above that end in an error


def _card_text(cell) -> str:
    """The card's final HTML as the user reads it (tags dropped, entities decoded)."""
    [output] = [o for o in cell.outputs if "text/html" in o.get("data", {})]
    return html.unescape(re.sub(r"<[^>]+>", " ", output.data["text/html"]))


def test_a_model_cell_card_names_its_model_and_whether_it_was_stored(tmp_path, store,
                                                                     monkeypatch):
    """`%%mlops track --model VAR [--register NAME]` in a real kernel on a real SQLite store:
    each card names its variable and, once `%mlops end` flushed, what became of it; values
    asked for and not defined are said in the cell and on the card; `%mlops end` counts them
    and the cells that failed."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(store.folder / "mlflow.db", tmp_path / "mlflow.db")  # already migrated
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(c, metadata={"tags": ["raises-exception"]} if i in RAISES
                                  else {}) for i, c in enumerate(MODEL_CELLS)])
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    forest, boosting, rule, forgotten, typo = (_card_text(nb.cells[i]) for i in range(1, 6))

    from jupyter_mlops.widgets.data import resolve_client

    client = resolve_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [version] = client.search_model_versions("name = 'Churn_Forest_Card'")
    assert re.search(rf"model:\s+forest\s+→ registered Churn_Forest_Card v{version.version}\b",
                     forest), forest
    assert re.search(r"model:\s+boosting\s+→ stored, not registered\b", boosting), boosting
    assert re.search(r"model:\s+rule\s+→ NOT STORED: rejected", rule), rule
    assert "could not be read back" in rule  # the store's reason, among the card's problems
    assert re.search(r"model:\s+knn\s+→ NOT LOGGED: no such variable", forgotten), forgotten
    assert 'data-status="FINISHED"' in nb.cells[1].outputs[0].data["text/html"]

    # The card's duration is the stored run's (start to end), as the panel says it.
    run = client.search_runs([client.get_experiment_by_name("Churn_Cards").experiment_id],
                             "attributes.run_name = 'Random_Forest'")[0]
    assert f" {duration_text((run.info.end_time - run.info.start_time) / 1000)} " in forest
    [logged] = client.search_logged_models([run.info.experiment_id],
                                           f"source_run_id = '{run.info.run_id}'")
    assert logged.name == "forest"  # the panel's run details name the model as the card does

    # A misspelt name: one line in the cell with the variable it looks like, and the card.
    said = "".join(o.get("text", "") for o in nb.cells[5].outputs)
    assert said.splitlines() == [
        "mlops: cell run 'Typo_Param': --params n_estimatrs: no such variable, not logged; "
        "did you mean 'n_estimators'?",
        "mlops: cell run 'Typo_Param': --metrics acuracy: no such variable, not logged; "
        "did you mean 'accuracy'?"], said
    assert re.search(r"metrics:\s+staged_accuracy=\s*0\.7\s*,\s+acuracy → NOT LOGGED", typo), typo
    assert re.search(r"params:\s+n_estimatrs → NOT LOGGED", typo), typo

    # An unknown option: track's usage, the option meant, and the cell did not run.
    [refused] = nb.cells[7].outputs  # IPython says a UsageError on stderr
    assert refused.text.splitlines()[:3] == [
        "UsageError: unknown option --modle; did you mean --model?", "The cell did not run.",
        "usage: %mlops track [-h] [--params PARAMS] [--metrics METRICS] [--model MODEL]"], \
        nb.cells[7].outputs

    # `%mlops end`: the cells' outcomes and the values not logged beside the store's answer.
    [ended] = nb.cells[8].outputs
    assert ended.name == "stderr" and "; 6 cell runs: 5 finished, 1 failed (Boom_Cell); " \
        "3 values were asked for and not logged (--model knn, --params n_estimatrs, " \
        "--metrics acuracy); 1 record REJECTED by the store" in ended.text, ended.text
    assert "the other records stored" in ended.text
