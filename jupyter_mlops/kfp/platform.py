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
    """Put the step's secrets, volumes, labels, annotations and variables on its task.

    The step's KubernetesExecutorConfig is built once, with kfp-kubernetes' messages, and set
    on the task in one go: its `use_secret_as_env`, `mount_pvc`, `add_pod_label` ... each parse
    the task's whole config from JSON and write it back, per call (most of the platform's cost
    in a compile). The fields are the ones those functions fill.
    """
    options = step.options
    for key in sorted(options.env):
        task.set_env_variable(key, options.env[key])
    if not (options.secrets or options.volumes or options.labels or options.annotations):
        return
    # Imported on first use: kfp.kubernetes imports the Kubernetes client (~0.6 s).
    from google.protobuf import json_format
    from kfp.kubernetes import common
    from kfp.kubernetes import kubernetes_executor_config_pb2 as pb

    config = common.get_existing_kubernetes_config_as_message(task)
    for secret in options.secrets:  # tag order: the YAML is the same on every compile
        config.secret_as_env.append(pb.SecretAsEnv(
            secret_name=secret.secret,  # deprecated by kfp-kubernetes, still filled by it
            key_to_env=[pb.SecretAsEnv.SecretKeyToEnvMap(secret_key=secret.key,
                                                         env_var=secret.env)],
            optional=False,  # kfp-kubernetes' default: the pod does not start without it
            secret_name_parameter=common.parse_k8s_parameter_input(secret.secret, task)))
    for volume in options.volumes:
        config.pvc_mount.append(pb.PvcMount(
            constant=volume.pvc,  # deprecated by kfp-kubernetes, still filled by it
            mount_path=volume.path,
            pvc_name_parameter=common.parse_k8s_parameter_input(volume.pvc, task)))
    config.pod_metadata.labels.update(sorted(options.labels.items()))
    config.pod_metadata.annotations.update(sorted(options.annotations.items()))
    task.platform_config["kubernetes"] = json_format.MessageToDict(config)
