"""Submission through kfp.Client, against a local stand-in of the KFP API server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from kfp_api_standin import Behaviour, KfpApiStandIn
from kfp_helpers import SMALL

from jupyter_mlops.cli import main
from jupyter_mlops.kfp import KfpSubmitError, compile_notebook
from jupyter_mlops.kfp.connection import resolve_connection
from jupyter_mlops.kfp.submit import kfp_cron


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("package") / "small.yaml"
    compile_notebook(SMALL, path)
    return path


@pytest.fixture(autouse=True)
def _no_ambient_settings(no_ambient_kfp, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads ~/.config/kfp/context.json


def test_a_run_carries_the_compiled_spec_and_typed_parameters(package, capsys):
    with KfpApiStandIn() as api:
        code = main(["submit", str(package), "--host", api.url, "--token", "secret",
                     "--experiment", "nightly", "-p", "n", "7", "-p", "scale", "0.5",
                     "-p", "flag", "false", "-p", "weights", "[4, 5]", "-p", "label", "x"])
    assert code == 0
    assert "created run run-1" in capsys.readouterr().out
    (experiment,) = api.posted("/apis/v2beta1/experiments")
    assert experiment.body["display_name"] == "nightly"
    (run,) = api.posted("/apis/v2beta1/runs")
    assert run.body["pipeline_spec"] == yaml.safe_load(package.read_text())
    assert run.body["runtime_config"]["parameters"] == {
        "n": 7, "scale": 0.5, "flag": False, "weights": [4, 5], "label": "x"}
    assert run.body["experiment_id"] == "exp-1"
    assert all(r.headers.get("authorization") == "Bearer secret" for r in api.behaviour.requests)


def test_a_notebook_is_compiled_then_submitted_on_a_cron_schedule(monkeypatch, capsys):
    with KfpApiStandIn() as api:
        monkeypatch.setenv("KFP_HOST", api.url)  # the host from the environment
        code = main(["submit", str(SMALL), "--schedule", "30 6 * * 1-5", "-p", "n", "3"])
    assert code == 0
    assert "created recurring run rec-1" in capsys.readouterr().out
    (job,) = api.posted("/apis/v2beta1/recurringruns")
    assert job.body["trigger"]["cron_schedule"]["cron"] == "0 30 6 * * 1-5"
    assert job.body["runtime_config"]["parameters"] == {"n": 3}
    assert job.body["pipeline_spec"]["pipelineInfo"]["name"] == "small"
    assert not api.posted("/apis/v2beta1/runs")


@pytest.mark.parametrize(("status", "expected"), [
    (401, "wants credentials (401 Unauthorized)"),
    (403, "refused these credentials (403 Forbidden)"),
])
def test_refused_credentials_are_one_clear_line(package, capsys, status, expected):
    with KfpApiStandIn(Behaviour(status=status)) as api:
        code = main(["submit", str(package), "--host", api.url])
    err = capsys.readouterr().err
    assert code == 1
    assert expected in err and "access denied" in err
    assert "Traceback" not in err
    assert not api.posted("/apis/v2beta1/runs")


def test_a_rejected_spec_reports_the_servers_message(package, capsys):
    with KfpApiStandIn(Behaviour(reject_runs=True)) as api:
        code = main(["submit", str(package), "--host", api.url])
    err = capsys.readouterr().err
    assert code == 1
    assert "rejected the pipeline (400): Failed to create a run: invalid pipeline spec" in err
    assert "Traceback" not in err


def test_an_unreachable_server_is_named(package, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main(["submit", str(package), "--host", f"http://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot reach the KFP API at http://127.0.0.1:{port}" in err


def test_unknown_or_mistyped_parameters_are_refused_before_sending(package, capsys):
    with KfpApiStandIn() as api:
        assert main(["submit", str(package), "--host", api.url, "-p", "epochs", "3"]) == 1
        assert f"{package}: parameter 'epochs': unknown parameter (known: " \
            in capsys.readouterr().err
        assert main(["submit", str(package), "--host", api.url, "-p", "n", "many"]) == 1
        assert f"{package}: parameter 'n': expected an int (a whole number such as 3), " \
            "got 'many' (the default is 5)" in capsys.readouterr().err
    assert api.behaviour.requests == []


def test_a_missing_or_foreign_package_is_refused_before_sending(tmp_path, capsys):
    foreign = tmp_path / "other.yaml"
    foreign.write_text("apiVersion: v1\nkind: ConfigMap\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("root: [unclosed\n")
    with KfpApiStandIn() as api:
        for target, expected in ((tmp_path / "absent.yaml", "absent.yaml does not exist"),
                                 (foreign, "other.yaml is not a KFP pipeline spec"),
                                 (broken, "broken.yaml is not YAML")):
            assert main(["submit", str(target), "--host", api.url]) == 1
            err = capsys.readouterr().err
            assert expected in err and "Traceback" not in err
    assert api.behaviour.requests == []


def test_host_and_token_come_from_arguments_then_environment_then_config(monkeypatch, tmp_path):
    config = tmp_path / "kfp.json"
    config.write_text('{"host": "http://from-config", "token": "config-token"}')
    monkeypatch.setenv("JUPYTER_MLOPS_KFP_CONFIG", str(config))
    assert resolve_connection() == resolve_connection(host="http://from-config/")
    assert resolve_connection().token == "config-token"
    monkeypatch.setenv("KFP_HOST", "http://from-env")
    assert resolve_connection().host == "http://from-env"
    assert resolve_connection(host="http://from-arg").host == "http://from-arg"
    monkeypatch.delenv("KFP_HOST")
    config.unlink()
    with pytest.raises(KfpSubmitError, match="no KFP host"):
        resolve_connection()
    # urllib's ValueError traceback when submit asked its healthz
    with pytest.raises(KfpSubmitError, match="KFP host 'kfp.example.com': expected an http:// "
                                             r"or https:// URL \(e.g. https://kfp.example.com\)"):
        resolve_connection(host="kfp.example.com")


def test_cron_schedules_get_kfp_seconds_field():
    assert kfp_cron("0 6 * * *") == "0 0 6 * * *"
    assert kfp_cron("15 0 6 * * *") == "15 0 6 * * *"
    with pytest.raises(KfpSubmitError, match="not a cron expression"):
        kfp_cron("daily")
    assert kfp_cron("0 0 12 ? JAN-MAR SUN,SAT") == "0 0 12 ? JAN-MAR SUN,SAT"
    with pytest.raises(KfpSubmitError, match="the hour field '24': '24' is out of range 0-23"):
        kfp_cron("0 24 * * *")
    with pytest.raises(KfpSubmitError, match="the month field 'SMARCH': 'SMARCH' is not a number"):
        kfp_cron("0 0 1 SMARCH *")
