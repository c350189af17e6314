"""REST handlers under <base_url>/mlops/api/, thin over the tracking, models, runner and kfp
modules.

One handler class per route, defining exactly the methods the route offers; `routes` is the
table. The notebook-reading calls at the end run off the event loop (`run_notebook_call`).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import urllib.parse
from dataclasses import replace
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join

from jupyter_mlops.errors import CellError, MlopsError, StoreError
from jupyter_mlops.models import gates, registry
from jupyter_mlops.server import mlflow_reads, modelindex
from jupyter_mlops.server.base import KFP_NOT_CONFIGURED, MlopsHandler, NotebookRef
from jupyter_mlops.server.errors import ApiError, bad_request
from jupyter_mlops.server.jobs import notebook_html
from jupyter_mlops.server.runindex import (
    RunQuery,
    Scope,
    check_order_by,
    decode_token,
    encode_token,
)
from jupyter_mlops.steps.mlflow_vocabulary import find_experiment

MAX_PAGE = 1000
MAX_KFP_RUNS = 100
RUN_ID = r"(?P<run_id>[0-9a-fA-F]{1,64})"
MODEL = r"(?P<model>[^/]+)"  # a registered model's name, URL-encoded by the client
VERSION = r"(?P<version>[0-9]{1,9})"
JOB_ID = r"(?P<job_id>[0-9a-f]{1,32})"
ARTIFACT_CHUNK = 1 << 16
# Artifacts sent as text: what a tracked cell, a step and MLflow write that a person reads.
TEXT_SUFFIXES = (".py", ".txt", ".log", ".json", ".ipynb", ".yaml", ".yml", ".md", ".csv",
                 ".toml", ".cfg", ".ini", "MLmodel")


class ConfigHandler(MlopsHandler):
    """What the frontend may know of the server's settings (no secrets, no paths)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        settings = self.mlops
        self.reply({"mlflow_ui_url": settings.resolved_ui_url(),
                    "kfp_enabled": bool(settings.kfp_host),
                    "kfp_hint": None if settings.kfp_host else KFP_NOT_CONFIGURED,
                    # A local run's files are under .mlops/: JupyterLab opens them only if so.
                    "opens_hidden_files": bool(getattr(self.contents_manager, "allow_hidden",
                                                       False)),
                    "default_image": settings.default_image or None})


class ExperimentsHandler(MlopsHandler):
    """GET: the experiments of the store a notebook (or the root folder) tracks to."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        found, ref = await self.store_for(self.get_query_argument("notebook", None))
        listed = await asyncio.to_thread(mlflow_reads.experiments, found.client) if found else []
        self.reply({"experiments": listed, "notebook_experiment": _default_experiment(ref)})


class RunsHandler(MlopsHandler):
    """GET: a page of runs ordered MLflow's way, from the run index. With `notebook`: the runs
    of that notebook found by its path tag in every experiment (`experiment` or
    `experiment_id` narrows them to one); else the runs of the experiment named."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        found, ref = await self.store_for(self.get_query_argument("notebook", None))
        self.reply(await asyncio.to_thread(self._page, found, ref) if found else _no_runs())

    def _page(self, found: mlflow_reads.Store, ref: NotebookRef | None) -> dict[str, Any]:
        experiment = self._experiment(found.client, required=ref is None)
        if ref is None and experiment is None:  # the experiment named does not exist (yet)
            return _no_runs()
        scope: Scope | str = (mlflow_reads.notebook_scope(ref.os_path, ref.real_path) if ref
                              else experiment.experiment_id)
        query = self._query(self._narrowed(ref, experiment))
        page = found.index.search(scope, query)
        # `loading`: the runs are still being read; until then `total` counts those seen and
        # an order other than newest first covers only them. `error`: why reading them failed
        # (the runs listed are those held; the next request tries again).
        error = self.safe_message(StoreError(page.error), ref) if page.error else None
        return {"experiment": mlflow_reads.experiment_dict(experiment) if experiment else None,
                "experiments": self._experiments(found, scope, experiment),
                "runs": [mlflow_reads.run_summary(r) for r in page.runs],
                "total": page.total, "next_page_token": encode_token(query, page),
                "loading": page.loading, "error": error}

    def _narrowed(self, ref: NotebookRef | None, experiment: Any) -> tuple[str, ...]:
        """The experiments a notebook's runs are narrowed to: the one asked for, if any (an
        unknown name leaves none)."""
        if ref is None or (experiment is None and not self.get_query_argument("experiment", "")):
            return ()
        return (experiment.experiment_id,) if experiment is not None else ("",)

    @staticmethod
    def _experiments(found: mlflow_reads.Store, scope: Scope | str,
                     experiment: Any) -> list[dict[str, Any]]:
        """The experiments the listed runs are in, with their run counts, by name."""
        if isinstance(scope, str):
            counts = {scope: found.index.search(scope, RunQuery(max_results=1)).total}
        else:
            counts = found.index.experiments_of(scope)
        names = dict(found.index.experiment_names)
        if experiment is not None:
            names[experiment.experiment_id] = experiment.name
        listed = [{"experiment_id": eid, "name": names.get(eid, eid), "runs": n}
                  for eid, n in counts.items()]
        return sorted(listed, key=lambda e: e["name"])

    def _query(self, experiment_ids: tuple[str, ...]) -> RunQuery:
        order_by = self.get_query_arguments("order_by")
        check_order_by(order_by)
        try:
            max_results = int(self.get_query_argument("max_results", "100"))
        except ValueError:
            raise bad_request("max_results must be an integer", "bad-max-results") from None
        if not 1 <= max_results <= MAX_PAGE:
            raise bad_request(f"max_results must be 1..{MAX_PAGE}", "bad-max-results")
        query = RunQuery(tuple(order_by), max_results=max_results, experiment_ids=experiment_ids)
        offset, after = decode_token(self.get_query_argument("page_token", None), query)
        return replace(query, offset=offset, after=after)

    def _experiment(self, client: Any, required: bool) -> Any:
        """The experiment asked for by id or name; None if none is (or the name is unknown)."""
        experiment_id = self.get_query_argument("experiment_id", None)
        if experiment_id is not None:
            return _get_experiment(client, experiment_id)
        name = self.get_query_argument("experiment", None)
        if name is None and required:
            raise bad_request("give experiment_id, experiment or notebook", "missing-experiment")
        return find_experiment(client, name) if name else None


class RunHandler(MlopsHandler):
    """GET: one run in full: params, metrics with history, tags, artifacts, cell source."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        found, _ = await self.store_for(self.get_query_argument("notebook", None))
        if found is None:
            raise ApiError(404, "run-not-found", "no such run")
        self.reply(await asyncio.to_thread(mlflow_reads.run_details, found.client, run_id))


class ArtifactHandler(MlopsHandler):
    """GET ?path=...: one artifact file of a run, streamed: text as UTF-8 text (the cell's code,
    stdout, a step notebook's JSON), anything else as a download. Never rendered as a page of
    this origin: an artifact's HTML could otherwise run script with the user's session."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        path = self.get_query_argument("path", "")
        found, _ = await self.store_for(self.get_query_argument("notebook", None))
        if found is None:
            raise ApiError(404, "run-not-found", "no such run")
        with tempfile.TemporaryDirectory() as folder:
            local = await asyncio.to_thread(mlflow_reads.artifact_file, found.client, run_id, path,
                                            folder)
            name = os.path.basename(path)
            text, html = name.endswith(TEXT_SUFFIXES), name.endswith(".html")
            self.set_header("Content-Type", "text/plain; charset=utf-8" if text
                            else "text/html; charset=utf-8" if html  # a drift report
                            else "application/octet-stream")
            self.set_header("X-Content-Type-Options", "nosniff")
            # An origin of its own, no script: a report's markup shows, its code cannot act.
            self.set_header("Content-Security-Policy", "sandbox")
            if not (text or html):
                self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''"
                                f"{urllib.parse.quote(name)}")
            with open(local, "rb") as file:
                while chunk := file.read(ARTIFACT_CHUNK):
                    self.write(chunk)
                    await self.flush()


class GraphHandler(MlopsHandler):
    """GET ?path=: the saved notebook's step graph (steps, edges, parameters, warnings).
    POST {path, notebook}: the graph of the notebook as the editor holds it (its JSON, unsaved),
    with each code cell's roles; a cell's fault is a 400 that names the cell (`cell`)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        ref = await self.notebook(self.get_query_argument("path", None))
        self.reply(await self.run_notebook_call(_graph_dict, ref))

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        ref = await self.notebook(body.get("path"))
        content = body.get("notebook")
        if not isinstance(content, dict):
            raise bad_request("notebook must be the notebook's JSON (an object)", "bad-notebook")
        try:
            graph = await asyncio.to_thread(_edited_graph_dict, ref, content)
        except MlopsError as error:  # an answer, not a failure: the user is still editing
            refused = self.api_error(error, ref)
            cell = error.cell_index if isinstance(error, CellError) else None
            self.reply({"code": refused.code, "message": refused.message, "cell": cell},
                       status=refused.status_code)
            return
        self.reply(graph)


class CompileHandler(MlopsHandler):
    """POST {path, image?}: the KFP pipeline YAML and the graph it came from."""

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        ref = await self.notebook(body.get("path"))
        image = body.get("image") or self.mlops.default_image or None
        if image is not None and not isinstance(image, str):
            raise bad_request("image must be a string", "bad-image")
        self.reply(await self.run_notebook_call(_compile, ref, image))


class LocalRunsHandler(MlopsHandler):
    """POST {path, parameters?}: start a local pipeline run; GET: the runs started here."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"runs": [job.to_dict(offset=None) for job in self.mlops.jobs.all()]})

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        ref = await self.notebook(body.get("path"))
        # A malformed notebook or a value its parameters do not take: 400 now.
        parameters = await self.run_notebook_call(_local_run_parameters, ref, _parameters(body))
        folder = os.path.dirname(ref.real_path)
        uri = self.mlops.resolved_tracking_uri() or self.mlops.stores.local_uri(
            folder, self.contents_manager.root_dir)
        job = self.mlops.jobs.start(ref.api_path, ref.real_path, parameters, uri)
        self.reply(job.to_dict(), status=201)


class LocalRunHandler(MlopsHandler):
    """GET ?offset=: status and the log from `offset`; DELETE: cancel."""

    @tornado.web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        offset = self.int_argument("offset", 0)
        self.reply(self.mlops.jobs.get(job_id).to_dict(offset))

    @tornado.web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        job = await asyncio.to_thread(self.mlops.jobs.cancel, job_id)
        self.reply(job.to_dict(offset=None))


class StepNotebookHandler(MlopsHandler):
    """GET ?step=: a local run's executed step notebook as a page to read (nbconvert's HTML,
    never run as this origin's script). The runner keeps step notebooks under the hidden
    `.mlops/`, which the contents API refuses unless ContentsManager.allow_hidden is set (a
    server-wide choice this extension leaves to the user): this route shows them anyway."""

    @tornado.web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        step = self.get_query_argument("step", "")
        path = self.mlops.jobs.get(job_id).step_notebook(step)
        if path is None:
            raise ApiError(404, "step-notebook-not-found",
                           f"the local run has no executed notebook of step {step!r}")
        page = await asyncio.to_thread(notebook_html, path)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox")
        self.finish(page)


class SubmitHandler(MlopsHandler):
    """POST {path, parameters?, experiment?, image?, schedule?}: compile and submit to the
    configured KFP host; a run, or a recurring run when `schedule` (a cron) is given. The
    schedule is checked before the notebook is read or anything is sent."""

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        connection = self.kfp_connection()
        body = self.json_body()
        experiment, image, schedule = (_optional_string(body, key)
                                       for key in ("experiment", "image", "schedule"))
        cron = _cron(schedule) if schedule else None
        ref = await self.notebook(body.get("path"))
        options = {**connection, "parameters": _parameters(body), "experiment": experiment,
                   "image": image or self.mlops.default_image or None, "schedule": cron}
        self.reply(await self.run_notebook_call(_submit, ref, options), status=201)


class KfpRunsHandler(MlopsHandler):
    """GET ?notebook=PATH&limit=N: {pipeline, runs: [{id, name, state, created_at,
    finished_at, url}]}, the newest KFP runs of the notebook's pipeline on the configured host
    (kfp/runs.py), for the Runs panel; 409 when no host is configured, 502 when it fails."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        connection = self.kfp_connection()
        limit = self.int_argument("limit", 20, 1, MAX_KFP_RUNS)
        ref = await self.notebook(self.get_query_argument("notebook", None))
        options = {**connection, "limit": limit}
        self.reply(await self.run_notebook_call(_kfp_runs, ref, options))


class ModelsHandler(MlopsHandler):
    """GET ?notebook=&filter=&max_results=&page_token=: a page of the registered models of the
    store the notebook (or the root folder) tracks to, by name, with their aliases."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        found, _ = await self.store_for(self.get_query_argument("notebook", None))
        if found is None:
            self.reply({"models": [], "next_page_token": None})
            return
        size = self.int_argument("max_results", 50, 1, MAX_PAGE)
        token = self.get_query_argument("page_token", None)
        text = self.get_query_argument("filter", "")
        self.reply(await self.registry_call(found.models.models, size, token, text))


class ModelHandler(MlopsHandler):
    """GET ?notebook=&condition=&max_results=&page_token=: one model's versions, newest first,
    with aliases, metrics, lineage, the champion, and each version's verdict on `condition`
    (the `promote --if` grammar: `accuracy>=0.8 and f1>=champion`) when one is given."""

    @tornado.web.authenticated
    @authorized
    async def get(self, model: str) -> None:
        found = await self.registry_store(self.get_query_argument("notebook", None))
        size = self.int_argument("max_results", 20, 1, MAX_PAGE)
        offset = self.int_argument("page_token", 0)
        condition = self.get_query_argument("condition", "").strip()
        self.reply(await self.registry_call(found.models.page, model, condition, offset,
                                            size))


class VersionHandler(MlopsHandler):
    """GET ?notebook=: one version and its lineage: run, notebook, git commit, params and the
    datasets its run used (digests, rows)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, model: str, version: str) -> None:
        found = await self.registry_store(self.get_query_argument("notebook", None))
        self.reply(await self.registry_call(found.models.lineage, model, int(version)))


class PromotionHandler(MlopsHandler):
    """GET ?version=N&condition=: what promoting version N to @champion would do (the candidate
    against the current champion, the condition's verdicts): the confirmation's content.
    POST {version, condition?, to?, notebook?}: promote it (models/registry.py's `promote`,
    atomic; a condition that fails is a 409 with the verdicts, and nothing moves)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, model: str) -> None:
        found = await self.registry_store(self.get_query_argument("notebook", None))
        version = self.int_argument("version", 0, 1)
        condition = self.get_query_argument("condition", "").strip()
        to = self.get_query_argument("to", gates.CHAMPION)
        self.reply(await self.registry_call(found.models.preview, model, version,
                                            condition, to))

    @tornado.web.authenticated
    @authorized
    async def post(self, model: str) -> None:
        body = self.json_body()
        found = await self.registry_store(body.get("notebook"))
        version, condition, to = body.get("version"), body.get("condition") or None, \
            body.get("to") or gates.CHAMPION
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise bad_request("version must be a version number (1, 2, ...)", "bad-version")
        if not all(isinstance(x, str) for x in (to, condition or "")):
            raise bad_request("to and condition must be strings", "bad-condition")
        try:
            done = await self.registry_call(registry.promote, model, to=to, version=version,
                                            condition=condition, store=found.client)
        finally:
            found.models.forget(model)
        self.reply({"model": done.model, "alias": done.alias, "version": done.version,
                    "previous": done.previous, "moved": done.moved,
                    "results": modelindex.results_list(done.results),
                    "message": done.message()})


def _no_runs() -> dict[str, Any]:
    return {"experiment": None, "experiments": [], "runs": [], "total": 0,
            "next_page_token": None, "loading": False, "error": None}


def _get_experiment(client: Any, experiment_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_experiment(experiment_id)
    except MlflowException:
        raise ApiError(404, "experiment-not-found", "no such experiment") from None


def _default_experiment(ref: NotebookRef | None) -> str | None:
    """The experiment a notebook's tracked cells go to by default: its file name's stem."""
    return os.path.splitext(os.path.basename(ref.api_path))[0] if ref else None


def _optional_string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key) or None
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{key} must be a string", f"bad-{key}")
    return (value.strip() or None) if value else None


def _cron(schedule: str) -> str:
    """KFP's 6-field cron of `schedule`, or a 400 naming the field at fault."""
    from jupyter_mlops.errors import KfpSubmitError
    from jupyter_mlops.kfp.submit import kfp_cron

    try:
        return kfp_cron(schedule)
    except KfpSubmitError as error:
        raise bad_request(str(error), "bad-schedule") from None


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    parameters = body.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):  # [] is no object either
        raise bad_request("parameters must be an object", "bad-parameters")
    return parameters


# --- graph, compile and submit: the (already confined) notebook read, the replies shaped ------


def _graph(ref: NotebookRef) -> Any:
    """Parsed under its API path, so errors name the notebook as the user sees it."""
    from jupyter_mlops.notebook import build_graph, reads_notebook

    with open(ref.real_path, encoding="utf-8", errors="replace") as file:
        text = file.read()
    return build_graph(reads_notebook(text, ref.api_path), ref.api_path)


def _graph_dict(ref: NotebookRef) -> dict[str, Any]:
    """The step graph as GET /graph answers it."""
    return _graph(ref).to_dict()


def _edited_graph_dict(ref: NotebookRef, content: dict[str, Any]) -> dict[str, Any]:
    """The graph of notebook JSON as sent (read as .ipynb whatever the file's suffix), and the
    roles the tag grammar gives each tagged code cell: {"cells": {index: [role, ...]}}, "step"
    for a cell that starts one (a notebook without any is one untagged step)."""
    from jupyter_mlops.notebook import build_graph, reads_notebook
    from jupyter_mlops.notebook.layout import code_cells
    from jupyter_mlops.notebook.tags import parse_tags

    as_ipynb = ref.api_path if ref.api_path.endswith(".ipynb") else f"{ref.api_path}.ipynb"
    notebook = reads_notebook(json.dumps(content), as_ipynb)
    graph = build_graph(notebook, ref.api_path).to_dict()
    roles = {cell.index: _roles(parse_tags(cell.tags)) for cell in code_cells(notebook)}
    return graph | {"cells": {str(i): r for i, r in roles.items() if r}}


def _roles(tags: Any) -> list[str]:
    return sorted(tags.roles | ({"step"} if tags.steps else set()))


def _local_run_parameters(ref: NotebookRef, given: dict[str, Any]) -> dict[str, Any]:
    """A local run's values, read by the notebook's grammar now, so a fault is the request's."""
    from jupyter_mlops.notebook import parameter_values

    graph = _graph(ref)
    return parameter_values(graph.parameters, given, graph.path)


def _compile(ref: NotebookRef, image: str | None) -> dict[str, Any]:
    """{name, yaml, graph, warnings}: the graph as GET /graph gives it, the compiler's notes."""
    from jupyter_mlops.kfp import CompileOptions, compile_notebook

    graph = _graph(ref)
    compiled = compile_notebook(graph, options=CompileOptions(image=image or None))
    return {"name": compiled.name, "yaml": compiled.yaml, "graph": graph.to_dict(),
            "warnings": [str(w) for w in compiled.warnings]}


def _submit(ref: NotebookRef, options: dict[str, Any]) -> dict[str, Any]:
    """Compile, then create a KFP run on the configured host (token/namespace: env or file)."""
    from jupyter_mlops.kfp import CompileOptions, compile_notebook
    from jupyter_mlops.kfp.arguments import typed_arguments
    from jupyter_mlops.kfp.connection import resolve_connection
    from jupyter_mlops.kfp.submit import submit_package

    graph = _graph(ref)
    connection = resolve_connection(host=options["host"], namespace=options.get("namespace"))
    compiled = compile_notebook(graph, options=CompileOptions(image=options.get("image") or None))
    arguments = typed_arguments(options.get("parameters") or {}, compiled.yaml, graph.path, graph)
    experiment = options.get("experiment") or graph.experiment or graph.name
    with tempfile.TemporaryDirectory() as tmp:
        package = f"{tmp}/{compiled.name}.yaml"
        with open(package, "w", encoding="utf-8") as file:
            file.write(compiled.yaml)
        done = submit_package(package, connection, arguments=arguments,
                              experiment=experiment, schedule=options.get("schedule"))
    return {"kind": done.kind, "id": done.id, "experiment_id": done.experiment_id,
            "url": done.url, "experiment": experiment, "schedule": options.get("schedule")}


def _kfp_runs(ref: NotebookRef, options: dict[str, Any]) -> dict[str, Any]:
    """The notebook's pipeline name, from its graph, and its runs (token: env or file)."""
    from jupyter_mlops.kfp.connection import resolve_connection
    from jupyter_mlops.kfp.runs import pipeline_runs

    graph = _graph(ref)
    connection = resolve_connection(host=options["host"], namespace=options["namespace"])
    runs = pipeline_runs(connection, graph.name, options["limit"])
    return {"pipeline": graph.name, "runs": [run.to_dict() for run in runs]}


def routes(base_url: str) -> list[tuple[str, type[MlopsHandler]]]:
    """The extension's URL patterns; a test walks these to check every method's decorators."""
    api = url_path_join(base_url, "mlops", "api")
    table = [
        ("config", ConfigHandler),
        ("experiments", ExperimentsHandler),
        ("runs", RunsHandler),
        (f"runs/{RUN_ID}", RunHandler),
        (f"runs/{RUN_ID}/artifact", ArtifactHandler),
        ("graph", GraphHandler),
        ("compile", CompileHandler),
        ("local-runs", LocalRunsHandler),
        (f"local-runs/{JOB_ID}", LocalRunHandler),
        (f"local-runs/{JOB_ID}/notebook", StepNotebookHandler),
        ("submit", SubmitHandler),
        ("kfp-runs", KfpRunsHandler),
        ("models", ModelsHandler),
        (f"models/{MODEL}", ModelHandler),
        (f"models/{MODEL}/versions/{VERSION}", VersionHandler),
        (f"models/{MODEL}/promotion", PromotionHandler),
    ]
    return [(url_path_join(api, pattern) + "/?$", handler) for pattern, handler in table]
