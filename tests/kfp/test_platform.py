"""Secrets, volumes, pod labels and annotations: a PlatformSpec kfp-kubernetes' protos read."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s
from kfp_helpers import DATA, kfp_metrics, run_local

from jupyter_mlops.cli import main
from jupyter_mlops.kfp import compile_notebook

SECRETS = DATA / "Churn_Secrets.ipynb"
VOLUMES = DATA / "Shared_Volume.ipynb"
POD_METADATA = DATA / "Pod_Metadata.ipynb"


def _documents(text: str) -> tuple[dict, dict[str, k8s.KubernetesExecutorConfig]]:
    """The pipeline spec, and each executor's config parsed by kfp-kubernetes' own message
    (ParseDict refuses a field the proto does not have)."""
    spec, platform = yaml.safe_load_all(text)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return spec, {name: json_format.ParseDict(config, k8s.KubernetesExecutorConfig())
                  for name, config in executors.items()}


def test_secrets_travel_by_name_key_and_variable_never_by_value(monkeypatch):
    # The compiling machine has the values in its environment: they must stay there.
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "hunter2-Warehouse")
    monkeypatch.setenv("SCORING_TOKEN", "tok-5ecret-42")
    compiled = compile_notebook(SECRETS)
    assert "hunter2" not in compiled.yaml and "5ecret" not in compiled.yaml
    spec, configs = _documents(compiled.yaml)
    found = {executor: [(s.secret_name_parameter.runtime_value.constant.string_value,
                         [(m.secret_key, m.env_var) for m in s.key_to_env])
                        for s in config.secret_as_env]
             for executor, config in configs.items()}
    assert found == {
        "exec-load-customers": [("warehouse-credentials", [("password", "WAREHOUSE_PASSWORD")]),
                                ("warehouse-credentials", [("username", "WAREHOUSE_USER")])],
        "exec-score": [("scoring-api", [("token", "SCORING_TOKEN")])]}
    for executor in spec["deploymentSpec"]["executors"].values():
        assert "env" not in executor["container"]  # no variable holds a value in the spec


def test_volumes_mount_each_claim_where_the_tag_says():
    _, configs = _documents(compile_notebook(VOLUMES).yaml)
    mounts = {executor: [(m.pvc_name_parameter.runtime_value.constant.string_value,
                          m.mount_path) for m in config.pvc_mount]
              for executor, config in configs.items()}
    assert mounts == {"exec-extract": [("feature-store", "/mnt/features"),
                                       ("model-cache", "/models")],
                      "exec-aggregate": [("feature-store", "/mnt/features")]}


def test_labels_annotations_limits_and_caching_reach_their_steps_only():
    spec, configs = _documents(compile_notebook(POD_METADATA).yaml)
    metadata = {executor: (dict(c.pod_metadata.labels), dict(c.pod_metadata.annotations))
                for executor, c in configs.items()}
    assert metadata == {
        "exec-make-data": ({"team": "churn-ml", "app.kubernetes.io/part-of": "Churn_Model"},
                           {"example.com/owner": "Data Science (Anna)"}),
        "exec-train": ({"team": "churn-ml"}, {"example.com/cost-center": "ml-42"})}
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert (resources["resourceCpuLimit"], resources["resourceMemoryLimit"]) == ("2", "1Gi")
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["make-data"]["cachingOptions"] == {}  # cache:off
    assert tasks["train"]["cachingOptions"] == {"enableCache": True}


@pytest.mark.parametrize("notebook", [SECRETS, VOLUMES, POD_METADATA], ids=lambda p: p.stem)
def test_platform_options_compile_to_the_same_bytes_in_another_process(notebook, tmp_path):
    target = tmp_path / "pipeline.yaml"
    subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "compile", str(notebook),
                    "-o", str(target)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONHASHSEED": "3"})
    assert target.read_bytes() == compile_notebook(notebook).yaml.encode()


def test_env_that_a_secret_also_sets_is_refused_naming_the_step_and_variable(capsys):
    code = main(["compile", str(SECRETS), "--env", "SCORING_TOKEN=plain-text"])
    error = capsys.readouterr().err
    assert code != 0
    assert "step 'score'" in error and "'SCORING_TOKEN'" in error and "scoring-api" in error
    assert error.count("Churn_Secrets.ipynb") == 1
    assert "plain-text" not in error


def test_a_pipeline_with_labels_and_annotations_still_runs_under_kfp_local(tmp_path):
    """kfp.local ignores the PlatformSpec; the steps compute as they would on a cluster."""
    compiled = compile_notebook(POD_METADATA, install_packages=False)
    run = run_local(compiled.pipeline, tmp_path / "kfp", n_trees=3)
    assert 0.5 < kfp_metrics(run, "train")["train_accuracy"] <= 1.0
