"""`jupyter-mlops run -p` and `-f params.yaml` read values by the one parameter grammar.

The shared cases of tests/data/parameters (the same ones the KFP, REST and sweep tests run),
through the real command on a real notebook: what was accepted reaches the step's kernel
typed; what was refused stops the command with the grammar's message and exit code 1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

PARAMS = Path(__file__).resolve().parents[1] / "data" / "parameters"
CASES = json.loads((PARAMS / "cases.json").read_text())
NOTEBOOK = CASES["notebook"]
CLI = Path(sys.executable).parent / "jupyter-mlops"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(PARAMS / NOTEBOOK, tmp_path / NOTEBOOK)
    return tmp_path


def _command(folder: Path, *options: str) -> subprocess.Popen[str]:
    """The command as a user types it, in the notebook's folder; nothing tracked."""
    return subprocess.Popen([str(CLI), "run", NOTEBOOK, "--no-track", "--jobs", "1", *options],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def _reached_the_kernel(folder: Path, out: str) -> dict[str, object]:
    """The values the run recorded, checked against those papermill gave the step's kernel."""
    (line,) = [x for x in out.splitlines() if x.startswith("run folder: ")]
    run_dir = Path(line.removeprefix("run folder: "))
    if not run_dir.is_absolute():
        run_dir = folder / run_dir
    recorded = json.loads((run_dir / "run.json").read_text())["parameters"]
    injected = nbformat.read(run_dir / "train.ipynb", as_version=4).metadata.papermill.parameters
    assert {k: v for k, v in injected.items() if not k.startswith("_")} == recorded
    return recorded


def _params_file(folder: Path, name: str, values: dict[str, object]) -> str:
    (folder / name).write_text(yaml.safe_dump(values))
    return name


@pytest.mark.parametrize("case", CASES["accepted"], ids=["literals", "json"])
def test_p_and_f_take_text_by_the_declared_type(folder, case):
    pairs = [arg for name, text in case["given"].items() for arg in ("-p", name, text)]
    code, out, err = _finish(_command(folder, *pairs))
    assert code == 0, err
    assert _reached_the_kernel(folder, out) == case["values"]
    # The same text in a params file (YAML keeps it a string): the same values.
    code, out, err = _finish(_command(folder, "-f", _params_file(folder, "p.yaml", case["given"])))
    assert code == 0, err
    assert _reached_the_kernel(folder, out) == case["values"]


def test_a_params_file_written_by_hand(folder):
    """YAML reads `1e-3` as a string and `{'class_weight': null}` as a mapping: both are read
    by the parameters' types, as `-p` reads them."""
    (folder / "params.yaml").write_text("C: 1e-3\nmax_iter: 50\nuse_scaler: no\n"
                                        "cfg: {'class_weight': null}\nfeatures: [tenure]\n")
    code, out, err = _finish(_command(folder, "-f", "params.yaml", "-p", "C", "2.5e-1"))
    assert code == 0, err
    values = _reached_the_kernel(folder, out)
    assert values == {"C": 0.25, "max_iter": 50, "use_scaler": False, "model_name": "churn_lr",
                      "cfg": {"class_weight": None}, "features": ["tenure"]}


@pytest.mark.parametrize("case", CASES["refused"],
                         ids=[f"{c['name']}={c['text']}" for c in CASES["refused"]])
def test_p_and_f_refuse_with_the_grammars_message(folder, case):
    by_flag = _command(folder, "-p", case["name"], case["text"])
    by_file = _command(folder, "-f", _params_file(folder, "p.yaml",
                                                  {case["name"]: case["text"]}))
    for process, named in ((by_flag, NOTEBOOK), (by_file, f"parameters file 'p.yaml' of "
                                                           f"notebook {NOTEBOOK!r}")):
        expected = f"error: {named}: {case['message']}"
        code, out, err = _finish(process)
        assert code == 1
        assert expected in err.splitlines(), err
        assert "Traceback" not in err and "run folder" not in out
    assert not (folder / ".mlops" / "runs").exists()  # refused before any step ran


def test_a_params_file_missing_or_with_a_misspelt_name_is_named_as_the_file(folder):
    (folder / "churn_params.yaml").write_text("max_iters: 50\n")
    missing = _command(folder, "-f", "nope.yaml")
    misspelt = _command(folder, "-f", "churn_params.yaml")
    code, out, err = _finish(missing)
    assert code == 1
    assert err.startswith("error: parameters file 'nope.yaml': cannot read it: [Errno 2] "), err
    code, out, err = _finish(misspelt)
    assert code == 1
    assert err.startswith(f"error: parameters file 'churn_params.yaml' of notebook "
                          f"{NOTEBOOK!r}: parameter 'max_iters': unknown parameter (known: "), err
    assert "did you mean 'max_iter'?)" in err and "Traceback" not in err
