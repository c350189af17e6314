"""secret:, volume:, label:, annotation: and limit: tags, checked when the graph is built."""

from __future__ import annotations

import pytest
from conftest import graph_of

from jupyter_mlops.errors import CellError
from jupyter_mlops.notebook.model import SecretEnv, VolumeMount

LOAD = "rows = fetch_rows(limit=10)"


def test_platform_tags_add_up_over_a_steps_cells_in_our_dialect():
    graph = graph_of([
        ("fetch_rows = lambda limit: list(range(limit))", ["setup"]),
        (LOAD, ["step:load", "secret:db-credentials:password:DB_PASSWORD",
                "volume:raw-data:/mnt/raw", "label:team:ml"]),
        ("first = rows[0]", ["secret:db-credentials:user:DB_USER", "volume:cache:/cache",
                             "annotation:example.com/owner:Anna B", "limit:memory:2Gi"]),
    ])
    options = graph.step("load").options
    assert graph.dialect == "mlops"
    assert options.secrets == (SecretEnv("db-credentials", "password", "DB_PASSWORD"),
                               SecretEnv("db-credentials", "user", "DB_USER"))
    assert options.volumes == (VolumeMount("raw-data", "/mnt/raw"), VolumeMount("cache", "/cache"))
    assert (options.labels, options.annotations, options.limits) == (
        {"team": "ml"}, {"example.com/owner": "Anna B"}, {"memory": "2Gi"})
    described = graph.to_dict()["steps"][0]["options"]
    assert described["secrets"][0] == {"secret": "db-credentials", "key": "password",
                                       "env": "DB_PASSWORD"}


@pytest.mark.parametrize(("tag", "field"), [
    ("secret:Warehouse:password:PW", "the secret name 'Warehouse'"),
    ("secret:warehouse:pass word:PW", "the secret key 'pass word'"),
    ("secret:warehouse:password:2PW", "the environment variable '2PW'"),
    ("secret:warehouse:password", "expected secret:NAME:KEY:ENV"),
    ("volume:Raw_Data:/mnt", "the PersistentVolumeClaim name 'Raw_Data'"),
    ("volume:raw-data:mnt/raw", "the mount path 'mnt/raw'"),
    ("label:team:Machine Learning", "the label value 'Machine Learning'"),
    ("label:-team:ml", "the key '-team'"),
    ("annotation:Example.com/owner:x", "the key prefix 'Example.com'"),
    ("limit:memory:lots", "the limit 'lots'"),
    ("secret:", "expected the form 'secret:db-credentials:password:DB_PASSWORD'"),
])
def test_a_bad_field_is_named_with_its_cell(tag, field):
    with pytest.raises(CellError) as caught:
        graph_of([("n = 3", ["parameters"]), (LOAD, ["step:load", tag])])
    assert caught.value.cell_index == 1
    assert field in str(caught.value) and "fetch_rows" in str(caught.value)


@pytest.mark.parametrize(("second", "slot"), [
    ("secret:api:token:DB_PASSWORD", "environment variable 'DB_PASSWORD'"),
    ("volume:cache:/mnt/raw", "mount path '/mnt/raw'"),
])
def test_one_variable_or_mount_path_set_twice_in_a_step_is_refused(second, slot):
    with pytest.raises(CellError) as caught:
        graph_of([(LOAD, ["step:load", "secret:db:password:DB_PASSWORD", "volume:raw:/mnt/raw"]),
                  ("first = rows[0]", [second])])
    assert caught.value.cell_index == 1
    assert f"{slot} is set twice in this step" in str(caught.value)
