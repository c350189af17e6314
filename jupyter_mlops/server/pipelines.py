"""Graph, compile and submit, delegated to jupyter_mlops.notebook and jupyter_mlops.kfp; this
module only reads the (already confined) notebook and shapes the replies."""

from __future__ import annotations

from typing import Any


def _graph(ref: Any) -> Any:
    """Parsed under its API path, so errors name the notebook as the user sees it."""
    from jupyter_mlops.notebook import build_graph, reads_notebook

    with open(ref.real_path, encoding="utf-8", errors="replace") as file:
        text = file.read()
    return build_graph(reads_notebook(text, ref.api_path), ref.api_path)


def graph_dict(ref: Any) -> dict[str, Any]:
    """The step graph as GET /graph answers it."""
    return _graph(ref).to_dict()


def local_run_parameters(ref: Any, given: dict[str, Any]) -> dict[str, Any]:
    """A local run's values, read by the notebook's grammar now, so a fault is the request's."""
    from jupyter_mlops.notebook import parameter_values

    graph = _graph(ref)
    return parameter_values(graph.parameters, given, graph.path)


def compile_yaml(ref: Any, image: str | None) -> dict[str, Any]:
    """{name, yaml, graph, warnings}: the graph as GET /graph gives it, the compiler's notes."""
    from jupyter_mlops.kfp import compile_notebook

    graph = _graph(ref)
    compiled = compile_notebook(graph, options=_compile_options(image))
    return {"name": compiled.name, "yaml": compiled.yaml, "graph": graph.to_dict(),
            "warnings": [str(w) for w in compiled.warnings]}


def submit(ref: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Compile, then create a KFP run on the configured host (token/namespace: env or file)."""
    import tempfile

    from jupyter_mlops.kfp import compile_notebook
    from jupyter_mlops.kfp.arguments import typed_arguments
    from jupyter_mlops.kfp.connection import resolve_connection
    from jupyter_mlops.kfp.submit import submit_package

    graph = _graph(ref)
    connection = resolve_connection(host=options["host"], namespace=options.get("namespace"))
    compiled = compile_notebook(graph, options=_compile_options(options.get("image")))
    arguments = typed_arguments(options.get("parameters") or {}, compiled.yaml, graph.path, graph)
    experiment = options.get("experiment") or graph.experiment or graph.name
    with tempfile.TemporaryDirectory() as tmp:
        package = f"{tmp}/{compiled.name}.yaml"
        with open(package, "w", encoding="utf-8") as file:
            file.write(compiled.yaml)
        done = submit_package(package, connection, arguments=arguments,
                              experiment=experiment)
    return {"kind": done.kind, "id": done.id, "experiment_id": done.experiment_id,
            "url": done.url, "experiment": experiment}


def _compile_options(image: str | None) -> Any:
    from jupyter_mlops.kfp import CompileOptions

    return CompileOptions(image=image or None)
