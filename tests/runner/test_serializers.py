"""The serializer registry, in this process: each built-in by type, extension, failure naming."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from jupyter_mlops.errors import MlopsError
from jupyter_mlops.steps import serializers
from jupyter_mlops.steps.errors import SerializationError


@pytest.mark.parametrize(("value", "serializer", "ext"), [
    (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), "parquet", "parquet"),
    (np.arange(6).reshape(2, 3), "npy", "npy"),
    (LogisticRegression(C=0.5), "joblib", "joblib"),
    ({"nested": [1, 2.5, None]}, "pickle", "pkl"),
    (np.array([{"a": 1}], dtype=object), "pickle", "pkl"),  # npy without pickle cannot
    (pd.DataFrame({"mixed": [1, "x"]}), "pickle", "pkl"),  # parquet refuses: pickle takes over
], ids=["dataframe", "ndarray", "estimator", "dict", "object-array", "mixed-frame"])
def test_each_type_goes_to_its_serializer_and_comes_back(tmp_path, value, serializer, ext):
    path = serializers.dump(value, tmp_path, "value", step="s")
    assert path == tmp_path / f"value.{ext}"
    manifest = serializers.read_manifest(tmp_path, "value")
    assert manifest["serializer"] == serializer
    back = serializers.load(tmp_path, "value")
    # the file alone, moved elsewhere (a step's model spooled for the tracking sender)
    moved = path.rename(tmp_path / "spooled.bin")
    assert type(serializers.load_file(manifest["serializer"], moved)) is type(back)
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value)
    elif isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.tolist() == value.tolist()
    elif isinstance(value, LogisticRegression):
        assert back.get_params() == value.get_params()
    else:
        assert back == value


def test_a_function_defined_in_the_notebook_travels(tmp_path):
    namespace: dict = {}
    exec("def scale(x):\n    return 3 * x\n", namespace)  # as a notebook cell defines it
    serializers.dump(namespace["scale"], tmp_path, "scale")
    assert serializers.load(tmp_path, "scale")(2) == 6


def test_an_unserializable_value_names_step_variable_and_type(tmp_path):
    with pytest.raises(SerializationError) as caught:
        serializers.dump(threading.Lock(), tmp_path, "guard", step="train")
    message = str(caught.value)
    assert "'train'" in message and "'guard'" in message and "_thread.lock" in message
    assert isinstance(caught.value, MlopsError)
    assert not list(tmp_path.glob("guard.*"))  # nothing half written


def test_a_registered_serializer_wins_for_its_types(tmp_path):
    class Celsius(float):
        pass

    custom = serializers.Serializer(
        "celsius", "txt", lambda v: isinstance(v, Celsius),
        lambda v, path: path.write_text(repr(float(v))),
        lambda path: Celsius(float(path.read_text())))
    serializers.register(custom)
    try:
        serializers.dump(Celsius(21.5), tmp_path, "temp")
        assert (tmp_path / "temp.txt").read_text() == "21.5"
        back = serializers.load(tmp_path, "temp")
        assert type(back) is Celsius and back == 21.5
        assert serializers.serializers()[0].name == "celsius"
    finally:
        serializers._REGISTRY.remove(custom)


def test_content_hash_follows_the_value(tmp_path):
    serializers.dump(np.arange(3), tmp_path / "one", "v")
    serializers.dump(np.arange(3), tmp_path / "two", "v")
    serializers.dump(np.arange(4), tmp_path / "three", "v")
    one, two, three = (serializers.content_hash(tmp_path / d, "v") for d in ("one", "two", "three"))
    assert one == two != three


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "x y"])
def test_value_names_cannot_leave_the_folder(tmp_path, name):
    with pytest.raises(SerializationError):
        serializers.dump(1, tmp_path / "data", name)
    assert not (tmp_path / "escape.pkl").exists()


def test_a_missing_value_is_a_clear_error(tmp_path):
    with pytest.raises(SerializationError, match="'absent'"):
        serializers.load(Path(tmp_path), "absent")


def test_metrics_keep_finite_numbers_only(tmp_path):
    written = serializers.write_metrics(tmp_path / "m.json", {
        "acc": np.float64(0.9), "n": 3, "flag": True, "name": "x", "nan": float("nan"),
        "missing": None})
    assert written == {"acc": 0.9, "n": 3.0}
