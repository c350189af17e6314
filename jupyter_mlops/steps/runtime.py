"""What runs inside each KFP component: the step notebook executed, kept, and logged to MLflow.

The generated component function (kfp/components.py) imports it from this package, installed
in the image or shipped with the component, so only the standard library at module level;
papermill and mlflow are imported where they are used. `step` is the dict the generated
function passes: pipeline, experiment, notebook, step, run_id (KFP's), timeout, tracking_uri
and mlflow (a pinned requirement to install when tracking is asked for and mlflow is
missing, or "").
"""

from jupyter_mlops.steps import mlflow_vocabulary as names


def run_step_notebook(notebook_json, parameters, inputs, values_dir, notebook_path, html_path,
                      step):
    """Execute a step notebook with papermill, as the local runner does; return its metrics.

    The executed notebook and its HTML are kept even when the step fails. With
    MLFLOW_TRACKING_URI set (the pipeline parameter or the container's environment) the
    step logs its MLflow run, a child of the pipeline run, and its `model:` tag's model, as
    it does locally.
    """
    import os
    import tempfile
    import time

    if step["tracking_uri"]:  # the kernel inherits it too
        os.environ["MLFLOW_TRACKING_URI"] = step["tracking_uri"]
    started = time.time()
    status, metrics = "FAILED", {}
    with tempfile.TemporaryDirectory(prefix="mlops-step-") as workdir:
        source = os.path.join(workdir, "step.ipynb")
        with open(source, "w", encoding="utf-8") as handle:
            handle.write(notebook_json)
        executed = os.path.join(workdir, "executed.ipynb")
        metrics_path = os.path.join(workdir, "metrics.json")
        os.makedirs(values_dir, exist_ok=True)
        arguments = dict(parameters, _mlops_inputs=inputs, _mlops_outputs_dir=values_dir,
                         _mlops_metrics_path=metrics_path)
        try:
            _execute(source, executed, arguments, step)
            metrics = _read_metrics(metrics_path, step["step"])
            status = "FINISHED"
        finally:  # papermill saves the notebook up to the failing cell: keep it either way
            _keep_notebook(executed, notebook_path, html_path)
            if os.environ.get("MLFLOW_TRACKING_URI"):
                log_mlflow_run(step, parameters, metrics, notebook_path, status,
                               time.time() - started, values_dir, inputs)
    return metrics


def _execute(source, executed, parameters, step):
    """papermill in a fresh kernel; `timeout` bounds the whole step, as the local runner's does.

    The kernel starts in the component's working directory (the image's WORKDIR, where an
    image puts the notebook's files), as a local step starts in the notebook's folder."""
    import signal
    import sys
    import threading

    # jsonschema's optional IRI check builds a grammar at import (~2 s of CPU a step);
    # notebook schemas use no IRI formats. The command line skips it the same way.
    sys.modules.setdefault("rfc3987_syntax", None)
    import papermill

    timeout = step["timeout"]
    expired = []
    deadline = bool(timeout) and threading.current_thread() is threading.main_thread()

    def expire(signum, frame):
        expired.append(True)
        raise TimeoutError(f"step {step['step']!r} timed out after {timeout:g} s")

    if deadline:
        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        papermill.execute_notebook(source, executed, parameters=parameters,
                                   kernel_name="python3", progress_bar=False,
                                   execution_timeout=None if deadline else timeout)
    finally:
        if deadline:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if expired:  # papermill records the interrupted cell and returns: fail the step anyway
        raise TimeoutError(f"step {step['step']!r} timed out after {timeout:g} s")


def _read_metrics(path, step_name):
    """The metrics the step notebook's last cell wrote; without them the step did not finish."""
    import json
    import os

    if not os.path.exists(path):
        raise RuntimeError(f"step {step_name!r} did not finish: its last cell never ran")
    with open(path, encoding="utf-8") as handle:
        return {name: float(value) for name, value in json.load(handle).items()}


def _keep_notebook(executed, notebook_path, html_path):
    import os
    import shutil

    if not os.path.exists(executed):
        return
    os.makedirs(os.path.dirname(notebook_path) or ".", exist_ok=True)
    shutil.copyfile(executed, notebook_path)
    _render_html(executed, html_path)


def _render_html(notebook_path, html_path):
    """The executed notebook as HTML for the KFP UI; a failed rendering must not fail the step."""
    import os

    try:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_filename(notebook_path)
    except Exception as error:  # noqa: BLE001 -- nbconvert is optional at run time
        body = f"<html><body><p>could not render the executed notebook: {error}</p></body></html>"
    os.makedirs(os.path.dirname(html_path) or ".", exist_ok=True)
    with open(html_path, "w", encoding="utf-8") as handle:
        handle.write(body)


def _mlflow_client(requirement):
    """An MlflowClient; mlflow is pip-installed first when missing and `requirement` allows."""
    import subprocess
    import sys

    try:
        from mlflow import MlflowClient
    except ImportError:
        if not requirement:
            print("MLFLOW_TRACKING_URI is set but mlflow is not installed: no run logged")
            return None
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement],
                       check=True)
        from mlflow import MlflowClient
    return MlflowClient()


def log_mlflow_run(step, parameters, metrics, notebook_path, status, duration,
                   values_dir=None, inputs=None):
    """The step's MLflow run, tagged as the local runner tags it, under the pipeline's run.

    Steps of one KFP run find their parent run by the run's id; the first step creates it.
    Each step leaves the parent settled (FAILED once any step failed), as no step knows
    whether it is the last. A model the step could not store fails the run and the step.
    """
    import os
    import shutil
    import tempfile
    import time

    client = _mlflow_client(step["mlflow"])
    if client is None:
        return None
    from mlflow.entities import Metric, Param

    experiment = names.get_or_create_experiment(client, step["experiment"])
    parent = _parent_run(client, experiment, step)
    run = client.create_run(experiment, run_name=step["step"], tags={
        names.PARENT_RUN_TAG: parent, names.KIND_TAG: names.KIND_STEP,
        names.STEP_TAG: step["step"], names.PIPELINE_RUN_TAG: step["run_id"],
        names.BACKEND_TAG: names.BACKEND_KFP,
        names.STATUS_TAG: "ok" if status == "FINISHED" else "failed"})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    values = [Metric(name, value, now, 0) for name, value in sorted(metrics.items())]
    client.log_batch(run_id, metrics=[*values, Metric(names.DURATION_METRIC, duration, now, 0)],
                     params=[Param(name, str(value)[:6000])  # MLflow's limit on a value
                             for name, value in sorted(parameters.items())])
    client.log_batch(parent, metrics=values)
    if os.path.exists(notebook_path):  # named as the local runner logs it
        with tempfile.TemporaryDirectory() as folder:
            named = os.path.join(folder, names.step_notebook_artifact(step["step"]))
            shutil.copyfile(notebook_path, named)
            client.log_artifact(run_id, named)
    failure = None
    try:
        _log_step_datasets(client, run_id, inputs or {},
                           values_dir if status == "FINISHED" else None)
        if status == "FINISHED" and values_dir and os.path.exists(notebook_path):
            _log_step_model(client, run_id, notebook_path, values_dir)
    except Exception as error:  # settle the runs first, then fail the step with it
        failure, status = error, "FAILED"
        client.set_tag(run_id, names.ERROR_TAG, f"{type(error).__name__}: {error}"[:5000])
    client.set_terminated(run_id, status)
    if client.get_run(parent).info.status != "FAILED":
        client.set_terminated(parent, status)
    if failure is not None:
        raise failure
    return run_id


def _log_step_datasets(client, run_id, inputs, values_dir):
    """The values read (`inputs`: name -> the artifact folder holding it) and written, as the
    local runner logs them: dataset inputs with their manifests' digests."""
    from jupyter_mlops.steps import datasets

    described = datasets.step_values(inputs, names.CONTEXT_INPUT)
    if values_dir:
        described += datasets.step_values(datasets.folder_values(values_dir),
                                          names.CONTEXT_OUTPUT)
    if described:
        datasets.log_datasets(client, run_id, described)


def _log_step_model(client, run_id, notebook_path, values_dir):
    """The value the step's `model:` tag names, logged as the local runner logs it, with its
    reference profile when the step wrote one."""
    import json
    import os

    from jupyter_mlops.steps import serializers
    from jupyter_mlops.steps.model_logging import log_model, step_model

    with open(notebook_path, encoding="utf-8") as handle:
        notebook = json.load(handle)
    found = step_model(notebook)
    if found is not None:  # registered by the pipeline's gate task, once its gates passed
        variable = found[0]
        log_model(client, run_id, serializers.load(values_dir, variable), name=variable)
        profile = os.path.join(values_dir, names.REFERENCE_PROFILE_ARTIFACT)
        if os.path.isfile(profile):  # written by the step where jupyter-mlops is installed
            client.log_artifact(run_id, profile)


def _parent_run(client, experiment, step):
    """The pipeline's run for this KFP run: found by tag, else made; the earliest wins a race."""
    query = (f"tags.`{names.PIPELINE_RUN_TAG}` = '{step['run_id']}' "
             f"and tags.`{names.KIND_TAG}` = '{names.KIND_PIPELINE}'")

    def earliest():
        found = client.search_runs([experiment], query)
        ordered = sorted(found, key=lambda r: (r.info.start_time, r.info.run_id))
        return ordered[0].info.run_id if ordered else None

    existing = earliest()
    if existing:
        return existing
    mine = client.create_run(experiment, run_name=f"pipeline-{step['run_id']}", tags={
        names.KIND_TAG: names.KIND_PIPELINE, names.PIPELINE_TAG: step["pipeline"],
        names.NOTEBOOK_TAG: step["notebook"], names.PIPELINE_RUN_TAG: step["run_id"],
        names.BACKEND_TAG: names.BACKEND_KFP}).info.run_id
    chosen = earliest()
    if chosen != mine:  # another step made one at the same time: use the first
        client.delete_run(mine)
    return chosen


def decode_json_parameter(text):
    """A parameter whose notebook default is None arrives as JSON text; plain text stays text."""
    import json

    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text
