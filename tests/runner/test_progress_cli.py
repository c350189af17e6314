"""Progress as plain lines off a terminal and a bar on one; `jupyter-mlops run` end to end."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from jupyter_mlops.cli import main
from jupyter_mlops.errors import StepFailed
from jupyter_mlops.runner import executor
from jupyter_mlops.runner.progress import Progress
from jupyter_mlops.runner.results import StepResult
from jupyter_mlops.steps import serializers

from .conftest import copy_notebook, set_cell_source


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _events(progress: Progress) -> None:
    progress.started("train")
    progress.finished(StepResult("train", "ok", duration=1.25))
    progress.finished(StepResult("load", "cached"))
    progress.finished(StepResult("boom", "failed", duration=0.5,
                                 error=StepFailed("boom", "ValueError: x", 3, "raise x")))
    progress.finished(StepResult("after", "skipped", reason="upstream step 'boom' failed"))
    progress.close()


def test_plain_lines_when_not_on_a_terminal():
    stream = io.StringIO()
    _events(Progress(4, stream))
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert [line.split()[:2] for line in lines] == [
        ["train", "started"], ["train", "done"], ["load", "cached"], ["boom", "FAILED"],
        ["after", "skipped"]]
    assert "in 1.2s" in lines[1] or "in 1.3s" in lines[1]
    assert "step 'boom' failed in cell 4 ('raise x'): ValueError: x" in lines[3]
    assert "\r" not in stream.getvalue()


def test_a_bar_on_a_terminal():
    stream = Terminal()
    _events(Progress(4, stream))
    text = stream.getvalue()
    assert "\r" in text and "0/4 [" in text  # tqdm draws its bar in place
    assert "train" in text and "FAILED" in text


def test_quiet_prints_nothing():
    stream = io.StringIO()
    _events(Progress(4, stream, quiet=True))
    assert stream.getvalue() == ""


def test_the_command_runs_a_notebook(tmp_path, capsys, monkeypatch):
    notebook = copy_notebook("cached", tmp_path)
    set_cell_source(notebook, "step:first", "import time\ntime.sleep(1.5)\n"
                                            "value = helpers.double(a)")
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "params.yaml").write_text("a: 5\nb: 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(executor, "HEARTBEAT_EVERY", 0.5)
    code = main(["run", str(notebook), "-f", "params.yaml", "-p", "a", "2", "--only", "first",
                 "--no-track", "--jobs", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "first" in err and "done" in err
    # A step that runs long says, every few seconds, which cell of the notebook it is at.
    assert "first                    running cell 4 ('import time')..." in err
    assert ": 1 step of " in err  # a plural only when the count is not 1
    assert f"run folder: {tmp_path / '.mlops' / 'runs'}" in out  # .mlops in the working folder
    run_dir = next((tmp_path / ".mlops" / "runs").iterdir())
    assert (run_dir / "first.ipynb").is_file()
    assert serializers.load(run_dir / "data" / "first", "value") == 4  # -p wins over -f
    assert json.loads((run_dir / "run.json").read_text())["parameters"] == {"a": 2, "b": 7}
    assert "debug:" not in err
    # The same run again, -vv: the runner's debug log says why no kernel was started.
    assert main(["run", str(notebook), "-f", "params.yaml", "-p", "a", "2", "--only", "first",
                 "--no-track", "--jobs", "1", "-vv"]) == 0
    err = capsys.readouterr().err
    assert "debug: " in err and "no kernel booted ahead: the same inputs ran from the cache" in err


def _child_processes() -> set[int]:
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            found.update(int(pid) for pid in (task / "children").read_text().split())
        except FileNotFoundError:
            pass  # a thread that has just ended
    return found


def test_the_command_names_a_bad_parameter(tmp_path, capsys, monkeypatch):
    notebook = copy_notebook("cached", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = _child_processes()
    assert main(["run", str(notebook), "-p", "epochs", "3", "--no-track"]) == 1
    assert f"{notebook}: parameter 'epochs': unknown parameter" in capsys.readouterr().err
    assert main(["run", str(notebook), "-p", "a", "many", "--no-track"]) == 1
    assert f"{notebook}: parameter 'a': expected an int" in capsys.readouterr().err
    assert main(["run", str(notebook), "--only", "secnd", "--no-track"]) == 1
    assert ("no step named 'secnd' (steps: first, second, third, always); "
            "did you mean 'second'?") in capsys.readouterr().err
    assert main(["run", str(notebook), "--jobs", "0", "--no-track"]) == 2
    assert not (tmp_path / ".mlops").exists()  # nothing ran, nothing was written
    # The kernel launched while the notebook was read is gone, and so is its staging log.
    assert _child_processes() <= before
    assert list((tmp_path / "tmp").iterdir()) == []
