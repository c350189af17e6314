"""Models benchmark: the Models view's routes and `jupyter-mlops models list` on a registry of
1,000 versions of 50 models, against MlflowClient.search_model_versions in the same run.

`.venv/bin/python -m benchmarks models`. The SQLite store is built once into
benchmarks/.work/models/ and reused (the time it took is printed). Runs are written with
MLflow's own ORM models in one transaction, as the server benchmark does; the registry
through MlflowClient (registered models, versions with the lineage tags `register` copies,
aliases). The routes are measured over HTTP on a real `jupyter server` with the extension;
`models list` as the command runs in its process (`cli.main`, its output to a buffer), after
the first call has imported mlflow.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import secrets
import signal
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.bench_server import FinishedRun, free_port, get, insert_runs, timed

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "models"
MODELS = 50
VERSIONS = 20  # per model: 1,000 in all
METRICS = ("accuracy", "f1", "auc", "precision", "recall", "log_loss")
PAGE = 50  # the Models view's first page of models
VERSION_PAGE = 20  # the versions of one model it shows
REPEATS = 20
BASELINE_REPEATS = 5
TARGET_MS = 200


def build_store(uri: str) -> float | None:
    """Seconds it took to make the registry, None when it was already there."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.search_registered_models(max_results=1):
        return None
    started = time.perf_counter()
    eid = client.create_experiment("churn-training", artifact_location=str(WORK / "artifacts"))
    runs = _insert_runs(uri, eid)
    _register(client, runs)
    return time.perf_counter() - started


def _insert_runs(uri: str, eid: str) -> list[str]:
    """MODELS * VERSIONS finished runs with params, metrics, notebook and git commit tags."""
    from jupyter_mlops.steps import mlflow_vocabulary as vocab

    rng = random.Random(16)
    start = int(time.time() * 1000) - MODELS * VERSIONS * 1000
    runs = []
    for i in range(MODELS * VERSIONS):
        rid, now = uuid.UUID(int=rng.getrandbits(128)).hex, start + i * 1000
        metrics = {key: rng.random() for key in METRICS}
        params = {k: str(rng.randint(10, 500))
                  for k in ("n_estimators", "max_depth", "min_samples_leaf")}
        tags = {"mlflow.runName": f"train-{i}", vocab.KIND_TAG: vocab.KIND_CELL,
                vocab.NOTEBOOK_TAG: "/home/ana/Churn_Model.ipynb",
                vocab.GIT_COMMIT_TAG: f"{rng.getrandbits(160):040x}"}
        runs.append(FinishedRun(rid, f"train-{i}", now, metrics, params, tags))
    insert_runs(uri, eid, runs)
    return [run.run_id for run in runs]


def _register(client: Any, runs: list[str]) -> None:
    """Each model's versions in run order, with the tags `register` copies from the run;
    @champion on the 10th version, @challenger on the newest."""
    from jupyter_mlops.steps import mlflow_vocabulary as vocab

    for m in range(MODELS):
        name = f"churn-model-{m:02d}"
        client.create_registered_model(name)
        for v in range(VERSIONS):
            rid = runs[m * VERSIONS + v]
            tags = client.get_run(rid).data.tags
            client.create_model_version(
                name, source=str(WORK / "artifacts" / rid / "model"), run_id=rid,
                tags={k: tags[k] for k in (vocab.NOTEBOOK_TAG, vocab.GIT_COMMIT_TAG)})
        client.set_registered_model_alias(name, "champion", "10")
        client.set_registered_model_alias(name, "challenger", str(VERSIONS))


def route_figures(port: int, token: str) -> dict[str, Any]:
    """The Models view's requests: the first page of models, then one model's versions (the
    first request for a model describes its versions; later ones are served from the cache)."""
    def models() -> dict:
        return get(port, token, "models", max_results=PAGE)

    def versions(name: str) -> dict:
        return get(port, token, f"models/{name}", max_results=VERSION_PAGE)

    started = time.perf_counter()
    page: Any = models()
    figures: dict[str, Any] = {"models_cold": time.perf_counter() - started}
    figures["models"], page = timed(models, REPEATS)
    names = [m["name"] for m in page["models"]]
    figures["versions_cold"] = [timed(lambda n=n: versions(n), 1)[0][0] for n in names[:5]]
    shown: Any
    figures["versions"], shown = timed(lambda: versions(names[0]), REPEATS)
    figures["preview"], _ = timed(lambda: get(port, token, f"models/{names[0]}/promotion",
                                              version=VERSIONS), REPEATS)
    figures["shown"] = (len(page["models"]), len(shown["versions"]))
    return figures


def cli_list(uri: str, *args: str) -> str:
    """`jupyter-mlops models list ARGS` in this process; what it printed."""
    from jupyter_mlops.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["models", "list", *args, "--tracking-uri", uri])
    assert code == 0, out.getvalue()
    return out.getvalue()


def function_figures(uri: str) -> dict[str, Any]:
    """`jupyter-mlops models list [MODEL]` and the MLflow calls to compare with."""
    from jupyter_mlops.models import registry
    from jupyter_mlops.tracking.destination import open_client

    client = open_client(uri, create=False)
    name = "churn-model-00"
    cli_list(uri)  # imports mlflow and the registry's modules once, as the first call would
    cpu = time.process_time()
    first, printed = timed(lambda: cli_list(uri), REPEATS)
    cpu = (time.process_time() - cpu) / REPEATS  # barely moves with the machine's load
    return {
        "cli_first": first, "cli_cpu": cpu, "cli_rows": len(str(printed).splitlines()) - 2,
        "cli_more": str(printed).splitlines()[-1],
        "open": timed(lambda: open_client(uri, create=False), REPEATS)[0],
        "page": timed(lambda: registry.page(store=client), REPEATS)[0],
        "list_one": timed(lambda: cli_list(uri, name), BASELINE_REPEATS)[0],
        "list_all": timed(lambda: registry.versions(store=client), 1)[0],
        "search_page": timed(lambda: client.search_model_versions(
            max_results=registry.PAGE_SIZE, order_by=registry._NEWEST), REPEATS)[0],
        "search_all": timed(lambda: client.search_model_versions(max_results=1000),
                            BASELINE_REPEATS)[0],
        "search_one": timed(lambda: client.search_model_versions(f"name = '{name}'"),
                            BASELINE_REPEATS)[0],
        "search_models": timed(lambda: client.search_registered_models(max_results=PAGE),
                               BASELINE_REPEATS)[0],
    }


def main() -> None:
    from benchmarks.bench_server import start_server

    WORK.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{WORK / 'mlflow.db'}"
    built = build_store(uri)
    print(f"registry: {MODELS} models x {VERSIONS} versions "
          + (f"generated in {built:.1f} s" if built is not None else "(already generated)"))
    token, port = secrets.token_hex(8), free_port()
    server = start_server(uri, port, token, WORK)
    try:
        ours = route_figures(port, token)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    report(ours, function_figures(uri))


def report(ours: dict[str, Any], base: dict[str, Any]) -> None:
    def ms(values: list[float]) -> str:
        return f"p50 {statistics.median(values) * 1000:.1f} ms (max {max(values) * 1000:.1f})"

    p50 = statistics.median
    print(f"routes over HTTP ({ours['shown'][0]} models, {ours['shown'][1]} versions shown):")
    print(f"  first page of models, first request: {ours['models_cold'] * 1000:.1f} ms")
    print(f"  first page of models: {ms(ours['models'])}")
    print(f"  a model's versions, first request (5 models): {ms(ours['versions_cold'])}")
    print(f"  a model's versions, cached: {ms(ours['versions'])}")
    print(f"  promotion preview, cached: {ms(ours['preview'])}")
    print("jupyter-mlops models list (in its process, mlflow imported):")
    print(f"  first page ({base['cli_rows']} of {MODELS * VERSIONS} versions, newest first): "
          f"{ms(base['cli_first'])}, CPU {base['cli_cpu'] * 1000:.1f} ms")
    print(f"    its last line: {base['cli_more']}")
    print(f"    of which opening the store (open_client): {ms(base['open'])}")
    print(f"    of which reading the page (registry.page, open client): {ms(base['page'])}")
    print(f"  one model ({VERSIONS} versions): {ms(base['list_one'])}")
    print(f"  every model, --all's function ({MODELS * VERSIONS} versions): "
          f"{ms(base['list_all'])}")
    print("MlflowClient:")
    print(f"  search_model_versions(max_results=50, newest first): {ms(base['search_page'])}")
    print(f"  search_model_versions(max_results=1000): {ms(base['search_all'])}")
    print(f"  search_model_versions(name = one model): {ms(base['search_one'])}")
    print(f"  search_registered_models(max_results={PAGE}): {ms(base['search_models'])}")
    first = p50(ours["models"])
    print(f"first page of the Models view vs search_model_versions(1000): "
          f"{p50(base['search_all']) / first:.1f}x faster; "
          f"{'within' if first * 1000 <= TARGET_MS else 'over'} the {TARGET_MS} ms target")
    print(f"a model's versions (cached) vs search_model_versions of that model: "
          f"{p50(base['search_one']) / p50(ours['versions']):.1f}x")
    listed = p50(base["cli_first"])
    print(f"models list, first page: {listed * 1000:.0f} ms = "
          f"{listed / p50(base['search_all']):.2f}x search_model_versions(1000); "
          f"{'within' if listed * 1000 <= TARGET_MS else 'over'} the {TARGET_MS} ms target")


if __name__ == "__main__":
    main()
