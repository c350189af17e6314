"""In-process checks of the pieces a kernel test cannot pin down cheaply: the magic's usage
handling, MLflow's limits, the spool, notebook detection, and `track()` in a script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_mlops.tracking import limits, notebook_info, quarantine
from jupyter_mlops.tracking.records import Damaged, Data, File, Header, Model, RunEnd, RunStart
from jupyter_mlops.tracking.spool import Spool

SUBCOMMANDS = ("start", "track", "log", "params", "end", "status", "runs", "ui")


@pytest.fixture(scope="module")
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_mlops")
    return ip


def test_help_lists_every_subcommand(shell, capsys):
    shell.run_cell("%mlops --help")
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)


@pytest.mark.parametrize("line", ["%mlops bogus", "%mlops start --nope", "%mlops track x",
                                  "%mlops log", "%mlops runs --last many", "%mlops log 'open"])
def test_wrong_usage_is_a_usage_error_not_a_traceback(shell, capsys, line):
    result = shell.run_cell(line)
    captured = capsys.readouterr()
    assert type(result.error_in_exec).__name__ == "UsageError"
    assert "SystemExit" not in captured.out + captured.err
    assert "UsageError" in captured.err + captured.out


def test_long_and_bad_keys_are_fixed_with_a_warning():
    with pytest.warns(limits.LimitWarning, match="has characters MLflow rejects"):
        assert limits.clean_key("loss@val", "metric") == "loss_val"
    with pytest.warns(limits.LimitWarning, match="250"):
        key = limits.clean_key("k" * 300, "param")
    assert len(key) == 250 and key.startswith("k" * 200)
    with pytest.warns(limits.LimitWarning, match="not a valid MLflow key"):
        assert limits.clean_key("..", "tag") is None


def test_long_tag_value_goes_to_an_artifact_with_a_marker():
    with pytest.warns(limits.LimitWarning, match="'big'"):
        cleaned = limits.clean_strings({"big": "v" * 9000}, "tag", limits.MAX_TAG_VALUE)
    assert len(cleaned.values["big"]) == limits.MAX_TAG_VALUE
    assert "cut by jupyter-mlops" in cleaned.values["big"]
    assert cleaned.overflow == {"tags/big.txt": "v" * 9000}


def test_metrics_keep_nan_and_inf_and_skip_non_numbers():
    with pytest.warns(limits.LimitWarning, match="'name' is not a number"):
        out = limits.clean_metrics({"a": float("nan"), "b": float("-inf"), "c": 2, "name": "x"})
    assert out["b"] == float("-inf") and out["c"] == 2.0 and out["a"] != out["a"]
    assert "name" not in out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        limits.clean_metrics({"ok": 1.0})


def test_spool_acks_survive_a_torn_line_and_lock_out_a_second_owner(tmp_path):
    spool = Spool(tmp_path, "s1")
    assert spool.try_own()
    ends = spool.append([Data("k", metrics=[["m", float("nan"), 1, 0]]),
                         RunEnd("k", "FINISHED", 2)])
    with open(spool.log_path, "ab") as handle:
        handle.write(b'{"op": "da')  # a crash mid-write
    spool.set_acked(ends[0])
    assert [r for _, r in spool.read(spool.acked())] == [RunEnd("k", "FINISHED", 2)]
    assert Spool(tmp_path, "s1").try_own() is False  # the live owner keeps it
    spool.release()
    assert Spool(tmp_path, "s1").try_own() is True


# Lines as the previous version's writer spooled them (a spool left on disk by an upgrade).
OLD_SPOOL = b"""\
{"op":"header","uri":"sqlite:////home/ada/Churn_Study/mlflow.db","host":"lab-7"}
{"op":"run","key":"k1","exp":"Churn_Model","parent":null,"name":"Random_Forest","start":1764579600000,"tags":{"mlops.kind":"cell","mlflow.user":"ada"}}
{"op":"data","key":"k1","params":{"n_estimators":"200"}}
{"op":"data","key":"k1","metrics":[["auc",0.91,1764579600500,0]]}
{"op":"file","key":"k1","dest":"","text":"print(auc)","artifact":"cell.py"}
{"op":"file","key":"k1","dest":"figures","artifact":"figure_0.png","file":"000001"}
{"op":"model","key":"k1","name":"model","register":"Churn_Forest","artifact":"model.pkl","file":"000002"}
{"op":"model","key":"k1","name":"forest","register":null,"artifact":"forest.joblib","file":"000003","serializer":"joblib"}
{"op":"end","key":"k1","status":"FINISHED","end":1764579601000}
"""


def test_a_spool_the_previous_version_left_is_read_as_typed_records(tmp_path):
    spool = Spool(tmp_path, "20261201090000-4242-deadbeef")
    spool.log_path.write_bytes(OLD_SPOOL)
    records = [record for _, record in spool.read(0)]
    assert [type(r) for r in records] == [Header, RunStart, Data, Data, File, File, Model, Model,
                                          RunEnd]
    assert records[1].parent is None and records[1].tags["mlops.kind"] == "cell"
    assert records[4].text == "print(auc)" and records[5].file == "000001"
    assert (records[6].register, records[7].serializer) == ("Churn_Forest", "joblib")
    # Written back, each is the same line: old and new spools have one shape.
    again = Spool(tmp_path / "again", "s")
    again.append(records)
    assert [json.loads(line) for line in again.log_path.read_bytes().splitlines()] == \
        [json.loads(line) for line in OLD_SPOOL.splitlines()]


@pytest.mark.parametrize(("line", "problem"), [
    (b'{"op":"end","key":["k1"],"status":"FINISHED","end":1}', "end record with key=\"['k1']\""),
    (b'{"op":"data","key":"k1","metrics":[["auc",0.9]]}', "not [key, value, time, step]"),
    (b'{"op":"upload","key":"k1"}', "unknown spool record 'upload' (written by a newer"),
    (b'[1, 2]', "a JSON list, not a record"),
    (b'{"op": "da\x00\x00', "not JSON"),
])
def test_a_line_of_no_known_shape_is_read_as_damaged_and_named(tmp_path, line, problem):
    spool = Spool(tmp_path, "s")
    spool.log_path.write_bytes(OLD_SPOOL[:OLD_SPOOL.index(b"\n") + 1] + line + b"\n")
    [(_, header), (_, damaged)] = spool.read(0)
    assert isinstance(damaged, Damaged) and problem in damaged.problem, damaged
    assert damaged.offset == OLD_SPOOL.index(b"\n") + 1
    assert quarantine.what(damaged) == f"damaged spool line at byte {damaged.offset}"


def test_an_earlier_quarantine_entry_is_still_described():
    """Entries the previous version wrote (a damaged line found by replay had no offset)."""
    entry = {"what": "damaged spool line ending at byte 812", "reason": "not sent: no op",
             "run": None, "run_id": None,
             "record": {"op": "damaged", "offset": None, "end": 812, "problem": "no op",
                        "line": "{}"}}
    assert quarantine.record_of(entry) == Damaged(None, "no op", "{}", 812)
    assert quarantine.describe(entry) == \
        "run ?: damaged spool line ending at byte 812: not sent: no op"
    model = {"what": "model 'forest'", "reason": "MlflowException: boom",
             "record": {"op": "model", "key": "k1", "name": "forest", "register": None,
                        "artifact": "model.pkl", "file": "000002"}}
    assert quarantine.record_of(model) == Model("k1", "forest", None, "model.pkl", "000002")


def test_notebook_path_from_jupyterlab_and_papermill(tmp_path, monkeypatch):
    monkeypatch.delenv("JUPYTER_MLOPS_NOTEBOOK", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "lab.ipynb"))
    assert notebook_info.detect_path({}) == tmp_path / "lab.ipynb"
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert notebook_info.detect_path({"PAPERMILL_INPUT_PATH": "x/pm.ipynb"}).name == "pm.ipynb"
    assert notebook_info.detect_path({"__session__": "s.ipynb"}).name == "s.ipynb"


def test_parameter_names_come_from_the_tagged_cells(tmp_path):
    cell = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[
        cell("import pandas as pd", metadata={"tags": ["setup"]}),
        cell("n_estimators = 100\nmax_depth: int = 5\n", metadata={"tags": ["parameters"]}),
        # Kale's tag; code the parameter grammar refuses (papermill runs it): what it binds
        cell("data_dir = Path('data')\nb, c = 2, 3\ndef f():\n    d = 4\n",
             metadata={"tags": ["pipeline-parameters"]}),
        cell("n_estimators = 300\nPAPERMILL_INPUT_PATH = 'x'",
             metadata={"tags": ["injected-parameters"]}),
        cell("forest = 1", metadata={"tags": ["step:train"]})])
    path = tmp_path / "Churn_Model.ipynb"
    nbformat.write(nb, path)
    assert notebook_info.parameter_names(path) == \
        ["n_estimators", "max_depth", "data_dir", "b", "c", "f"]  # not d: inside f


def test_extension_loads_from_the_ipython_config(tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "ipython_config.py").write_text(
        "c.InteractiveShellApp.extensions = ['jupyter_mlops']\n")
    done = subprocess.run(
        [sys.executable, "-m", "IPython", f"--profile-dir={profile}", "--no-banner", "-c",
         "get_ipython().run_line_magic('mlops', '--help')"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "Track notebook cells as MLflow runs" in done.stdout


def test_track_in_a_script_flushes_at_exit(tmp_path, h):
    shutil.copy(h.template_db(), tmp_path / "mlflow.db")  # the migration is tested elsewhere
    script = (
        "import jupyter_mlops\n"
        "with jupyter_mlops.track('step', experiment='scripts', params={'lr': 0.1}) as run:\n"
        "    print('hello from the script')\n"
        "    run.log_metrics({'loss': 0.25})\n"
        "try:\n"
        "    with jupyter_mlops.track('bad', experiment='scripts'):\n"
        "        raise RuntimeError('nope')\n"
        "except RuntimeError:\n"
        "    pass\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "hello from the script" in done.stdout  # still printed, and captured
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("scripts")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert runs["step"].info.status == "FINISHED"
    assert runs["step"].data.params == {"lr": "0.1"} and runs["step"].data.metrics == {"loss": 0.25}
    assert runs["bad"].info.status == "FAILED"
    assert runs["bad"].data.tags["mlops.error"] == "RuntimeError: nope"
    assert not list((tmp_path / ".jupyter_mlops" / "spool").iterdir())  # sent, then removed


def test_run_ids_are_read_incrementally_and_only_whole_lines(tmp_path):
    spool = Spool(tmp_path, "s1")
    assert spool.ids_after(0) == ({}, 0)  # no file yet
    spool.save_id("k1", "r1")
    ids, offset = spool.ids_after(0)
    assert ids == {"k1": "r1"} and offset == spool.ids_path.stat().st_size
    with open(spool.ids_path, "a") as handle:  # the sender is mid-write
        handle.write('["k2", "r')
    assert spool.ids_after(offset) == ({}, offset)
    with open(spool.ids_path, "a") as handle:
        handle.write('2"]\n')
    spool.save_id("k3", "r3")
    ids, end = spool.ids_after(offset)
    assert ids == {"k2": "r2", "k3": "r3"} and end == spool.ids_path.stat().st_size
    assert spool.load_ids() == {"k1": "r1", "k2": "r2", "k3": "r3"}


def test_tracking_reads_parameters_without_importing_nbformat():
    """nbformat's validator costs a kernel seconds at its first tracked cell (jsonschema's IRI
    grammar): tracking reads the parameters cell through the reader's JSON path only."""
    from pathlib import Path

    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "02_tagged_pipeline.ipynb"
    code = ("import sys, jupyter_mlops.magics\n"
            "from jupyter_mlops.tracking.notebook_info import parameter_names\n"
            f"print(parameter_names(__import__('pathlib').Path({str(notebook)!r})))\n"
            "print('nbformat' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    assert out == ["['n_customers', 'test_size', 'seed', 'n_estimators', 'max_depth', 'C']",
                   "False"]
