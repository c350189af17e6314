"""Kubernetes pod options that kfp's core dsl lacks: labels and annotations (Kale's tags).

They need the `kfp-kubernetes` extension. Without it they are left out, and the compile
reports each one it left out instead of failing the notebook. A step's `timeout:` needs no
extension: the component itself bounds the step's execution (runtime.py), as the local
runner does, so pip installs before it do not count against it.
"""

from __future__ import annotations

from typing import Any

from jupyter_mlops.notebook import Step


def _kubernetes() -> Any | None:
    try:
        from kfp import kubernetes
    except ImportError:
        return None
    return kubernetes


def apply_pod_options(step: Step, task: Any) -> list[str]:
    """Apply the step's pod labels and annotations; return notes on what was left out."""
    options = step.options
    if not (options.labels or options.annotations):
        return []
    kubernetes = _kubernetes()
    if kubernetes is None:
        return [f"step {step.tagged_name!r}: pod {kind} {sorted(found)} left out; they need "
                "the kfp-kubernetes package"
                for kind, found in (("labels", options.labels),
                                    ("annotations", options.annotations)) if found]
    for key, value in sorted(options.labels.items()):
        kubernetes.add_pod_label(task, key, value)
    for key, value in sorted(options.annotations.items()):
        kubernetes.add_pod_annotation(task, key, value)
    return []
