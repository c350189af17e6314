"""A step's Kubernetes options on its KFP task, with kfp-kubernetes: secrets as environment
variables, PersistentVolumeClaim mounts, pod labels and annotations, plain variables.

kfp-kubernetes writes them into the pipeline's PlatformSpec (its KubernetesExecutorConfig per
task). A secret travels as its name, key and variable only: the cluster reads the value when the
pod starts, so it never appears in the YAML. kfp.local ignores the PlatformSpec.
"""

from __future__ import annotations

from typing import Any

from jupyter_mlops.errors import KfpCompileError
from jupyter_mlops.notebook import Step, StepGraph


def check_env(graph: StepGraph, step: Step, pipeline_env: dict[str, str]) -> None:
    """A variable set twice (by a secret, the step's own variables, `--env`) would leave the
    pod's value to Kubernetes' ordering: refuse it, naming the step and the variable."""
    from_secrets = {secret.env: f"secret {secret.secret!r}" for secret in step.options.secrets}
    clashes = sorted(from_secrets.keys() & (step.options.env.keys() | pipeline_env.keys()))
    if clashes:
        name = clashes[0]
        raise KfpCompileError(graph.path, f"environment variable {name!r} comes from "
                              f"{from_secrets[name]} and is also set with --env or the "
                              "notebook's metadata; use another name", step.tagged_name)


def apply_platform(step: Step, task: Any) -> None:
    """Put the step's secrets, volumes, labels, annotations and variables on its task."""
    options = step.options
    for key in sorted(options.env):
        task.set_env_variable(key, options.env[key])
    if not (options.secrets or options.volumes or options.labels or options.annotations):
        return
    # Imported on first use: kfp.kubernetes imports the Kubernetes client (~0.6 s).
    from kfp import kubernetes

    for secret in options.secrets:  # tag order: the YAML is the same on every compile
        kubernetes.use_secret_as_env(task, secret.secret, {secret.key: secret.env})
    for volume in options.volumes:
        kubernetes.mount_pvc(task, volume.pvc, volume.path)
    for key, value in sorted(options.labels.items()):
        kubernetes.add_pod_label(task, key, value)
    for key, value in sorted(options.annotations.items()):
        kubernetes.add_pod_annotation(task, key, value)
