"""Cache hits and misses: code, a parameter, an input value, a local module and a package
version; cache:off, --no-cache, --from and --only. Each test starts from a copy of one cold run."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest

from jupyter_mlops.errors import RunnerError
from jupyter_mlops.steps import serializers

from .conftest import copy_notebook, run, set_cell_source, statuses


def _package(site: Path, version: str) -> None:
    """An installed distribution `mlopsdemo` at `version`, as pip would leave it."""
    for old in site.glob("mlopsdemo-*.dist-info"):
        shutil.rmtree(old)
    (site / "mlopsdemo").mkdir(parents=True, exist_ok=True)
    (site / "mlopsdemo" / "__init__.py").write_text("FACTOR = 10\n")
    info = site / f"mlopsdemo-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: mlopsdemo\nVersion: {version}\n")
    (info / "top_level.txt").write_text("mlopsdemo\n")
    (info / "RECORD").write_text("mlopsdemo/__init__.py,,\n")


def _use_site(monkeypatch: pytest.MonkeyPatch, site: Path) -> None:
    monkeypatch.syspath_prepend(str(site))  # the runner reads the version here
    monkeypatch.setenv("PYTHONPATH", str(site))  # the kernels import it from here


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cold")
    copy_notebook("cached", folder)
    (folder / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    _package(folder / "site", "1.0")
    with pytest.MonkeyPatch.context() as patch:
        _use_site(patch, folder / "site")
        result = run(folder / "cached.ipynb", folder / "out")
    assert result.ok, result.failures
    assert result.metrics == {"final": 40.0}
    return folder, result


@pytest.fixture
def workspace(cold, tmp_path, monkeypatch):
    """A copy of the cold run's folder (notebook, module, package, cache) to change."""
    folder = tmp_path / "ws"
    shutil.copytree(cold[0], folder, symlinks=True)
    _use_site(monkeypatch, folder / "site")
    return folder


def again(folder: Path, **options):
    result = run(folder / "cached.ipynb", folder / "out", **options)
    assert result.ok, result.failures
    return statuses(result)


def test_an_unchanged_rerun_reuses_all_but_cache_off_steps(workspace):
    assert again(workspace) == {"first": "cached", "second": "cached", "third": "cached",
                                "always": "ok"}


def test_no_cache_runs_everything(workspace):
    assert set(again(workspace, cache=False).values()) == {"ok"}


def test_a_changed_parameter_reruns_the_steps_that_read_it_and_what_follows(workspace):
    assert again(workspace, parameters={"b": 3}) == {
        "first": "cached", "second": "ok", "third": "ok", "always": "ok"}


def test_changed_code_with_the_same_value_stops_at_that_step(workspace):
    set_cell_source(workspace / "cached.ipynb", "step:first", "value = 2 * a")
    assert again(workspace) == {"first": "ok", "second": "cached", "third": "cached",
                                "always": "ok"}


def test_a_changed_input_value_reruns_downstream(workspace):
    set_cell_source(workspace / "cached.ipynb", "step:first", "value = helpers.double(a) + 1")
    assert again(workspace) == {"first": "ok", "second": "ok", "third": "ok", "always": "ok"}


def test_a_changed_local_module_reruns_the_steps_importing_it(workspace):
    (workspace / "helpers.py").write_text("def double(x):\n    return x + x\n")
    assert again(workspace) == {"first": "ok", "second": "ok", "third": "ok", "always": "ok"}


def test_a_new_package_version_reruns_only_the_step_importing_it(workspace):
    again(workspace)  # the runner's index of installed packages now knows version 1.0
    _package(workspace / "site", "1.1")
    assert again(workspace) == {"first": "cached", "second": "cached", "third": "ok",
                                "always": "ok"}
    assert sys.path[0] == str(workspace / "site")


def test_from_reruns_a_step_and_what_follows_reusing_upstream(workspace):
    assert again(workspace, from_step="second") == {"first": "cached", "second": "ok",
                                                    "third": "ok"}


def test_only_runs_one_step_on_cached_inputs(workspace):
    assert again(workspace, only="third") == {"first": "cached", "second": "cached",
                                              "third": "ok"}


def test_only_without_cached_inputs_says_so(workspace):
    result = run(workspace / "cached.ipynb", workspace / "elsewhere", only="third")
    assert statuses(result) == {"first": "failed", "second": "skipped", "third": "skipped"}
    assert "run the pipeline without --only first" in str(result.steps["first"].error)


def test_from_and_only_do_not_combine(workspace):
    with pytest.raises(RunnerError, match="cannot be combined"):
        run(workspace / "cached.ipynb", workspace / "out", from_step="first", only="third")


def test_two_runs_at_once_keep_to_their_own_folders(workspace):
    results = {}

    def one(b: int) -> None:
        results[b] = run(workspace / "cached.ipynb", workspace / "out", jobs=1, cache=False,
                         parameters={"b": b})

    threads = [threading.Thread(target=one, args=(b,)) for b in (5, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results[5].ok and results[6].ok
    assert results[5].run_dir != results[6].run_dir
    assert results[5].metrics == {"final": 70.0} and results[6].metrics == {"final": 80.0}
    for b, result in results.items():
        other = serializers.load(result.run_dir / "data" / "second", "other")
        assert other == 2 + b


def test_steps_share_a_reset_kernel_unless_fresh_kernels(workspace):
    shared = run(workspace / "cached.ipynb", workspace / "out", jobs=1, cache=False)
    fresh = run(workspace / "cached.ipynb", workspace / "out", jobs=1, cache=False,
                fresh_kernels=True)
    assert shared.ok and fresh.ok and shared.metrics == fresh.metrics
    assert len(list((shared.run_dir / "logs").glob("kernel-*.log"))) == 1
    assert len(list((fresh.run_dir / "logs").glob("kernel-*.log"))) >= 4


def _kernel_logs(result) -> list[str]:
    return sorted(path.name for path in (result.run_dir / "logs").iterdir())


def test_a_rerun_of_the_same_inputs_starts_no_kernel_and_a_changed_one_does(tmp_path):
    notebook = copy_notebook("diamond", tmp_path)
    first = run(notebook, tmp_path / "out")
    assert first.ok, first.failures
    assert _kernel_logs(first)
    same = run(notebook, tmp_path / "out")
    assert set(statuses(same).values()) == {"cached"}
    assert _kernel_logs(same) == []  # no kernel booted on the guess that one would be needed
    changed = run(notebook, tmp_path / "out", parameters={"n": 4})
    assert changed.ok and "ok" in statuses(changed).values()
    assert _kernel_logs(changed)

