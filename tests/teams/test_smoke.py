"""The team server itself: runs and their artifacts go through it into PostgreSQL."""

from __future__ import annotations

from mlflow.tracking import MlflowClient
from pg_server import MlflowServer, PostgresCluster


def test_runs_and_artifacts_are_stored_in_postgresql(team_server: MlflowServer,
                                                     pg_cluster: PostgresCluster) -> None:
    client = MlflowClient(team_server.uri)
    experiment = client.create_experiment("Churn_Model")
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "hello", "notes/x.txt")
    client.set_terminated(run.info.run_id)
    # The artifact came back through the server's proxy, not a local path.
    assert client.get_run(run.info.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    database = team_server.backend_uri.rsplit("/", 1)[1]
    stored = pg_cluster.psql(f"SELECT status FROM runs WHERE run_uuid = '{run.info.run_id}'",
                             database=database)
    assert stored.strip() == "FINISHED"
