"""The one parameter grammar: values read by the parameter's declared type (text parsed, data
checked), with one message per fault. The entry points' own tests run the shared cases."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_mlops.errors import ParameterError
from jupyter_mlops.notebook import Parameter, parameter_values
from jupyter_mlops.notebook.parameters import known_parameter, parameter_value

NOTEBOOK = "Churn_Model.ipynb"


def _param(kind: str, default: object = None) -> Parameter:
    return Parameter("value", default, kind, 1)


def _read(kind: str, value: object) -> object:
    return parameter_value(_param(kind), value, NOTEBOOK)


def _refusal(kind: str, value: object, default: object = None) -> str:
    with pytest.raises(ParameterError) as caught:
        parameter_value(_param(kind, default), value, NOTEBOOK)
    return str(caught.value)


@pytest.mark.parametrize(("kind", "text", "expected"), [
    ("float", "1e-3", 0.001), ("float", "1", 1.0), ("float", ".5", 0.5),
    ("float", "-2.5E2", -250.0), ("float", " 0.25 ", 0.25),
    ("int", "3", 3), ("int", "-12", -12), ("int", "+7", 7),
    ("bool", "true", True), ("bool", "False", False), ("bool", "YES", True), ("bool", "no", False),
    ("bool", "1", True), ("bool", "0", False), ("bool", "on", True), ("bool", "off", False),
    ("str", "1e-3", "1e-3"), ("str", "", ""), ("str", "[1, 2]", "[1, 2]"), ("str", " a ", " a "),
    ("dict", "{'a': 1}", {"a": 1}), ("dict", '{"a": true, "b": null}', {"a": True, "b": None}),
    ("dict", "{'nested': {'k': [1, 2.5]}}", {"nested": {"k": [1, 2.5]}}),
    ("list", "[1, 2]", [1, 2]), ("list", "['a', 'b']", ["a", "b"]), ("list", "[]", []),
    ("NoneType", "3", 3), ("NoneType", "text", "text"), ("NoneType", "null", None),
    ("NoneType", "{'a': 1}", {"a": 1}), ("NoneType", "{1, 2}", "{1, 2}"),
])
def test_text_is_parsed_by_the_declared_type(kind, text, expected):
    value = _read(kind, text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("kind", "data", "expected"), [
    ("float", 2, 2.0), ("float", 0.5, 0.5), ("int", 4, 4), ("bool", False, False),
    ("list", [1, "a"], [1, "a"]), ("dict", {"a": [1]}, {"a": [1]}), ("NoneType", 3.5, 3.5),
    ("NoneType", None, None),
])
def test_data_is_checked_against_the_declared_type(kind, data, expected):
    value = _read(kind, data)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("kind", "value", "got"), [
    ("int", "3.5", "'3.5'"), ("int", "1e3", "'1e3'"), ("int", "", "''"), ("int", 3.0, "float 3.0"),
    ("int", True, "bool True"), ("float", "inf", "'inf'"), ("float", "nan", "'nan'"),
    ("float", "0.1.2", "'0.1.2'"), ("float", True, "bool True"), ("float", math.inf, "float inf"),
    ("bool", "maybe", "'maybe'"), ("bool", 1, "int 1"), ("str", 7, "int 7"),
    ("dict", "[1]", "'[1]'"), ("dict", "{a: 1}", "'{a: 1}'"), ("list", "(1, 2)", "'(1, 2)'"),
    ("list", "1, 2", "'1, 2'"), ("list", {"a": 1}, "dict {'a': 1}"),
])
def test_a_refusal_names_notebook_parameter_type_value_and_default(kind, value, got):
    from jupyter_mlops.notebook.parameters import EXPECTED

    message = _refusal(kind, value, default="d")
    assert message == (f"{NOTEBOOK}: parameter 'value': expected {EXPECTED[kind]}, got {got} "
                       "(the default is 'd')")


@pytest.mark.parametrize(("kind", "value", "fragment"), [
    ("list", "[1, (2, 3)]", "values of type tuple are not accepted"),
    ("dict", "{1: 'a'}", "dictionary keys must be strings, got 1"),
    ("list", "[Infinity]", "inf is not accepted: only finite numbers"),
    ("NoneType", b"raw", "values of type bytes are not accepted"),
])
def test_only_plain_data_passes(kind, value, fragment):
    assert _refusal(kind, value) == f"{NOTEBOOK}: parameter 'value': {fragment}"


def test_unknown_and_malformed_names_are_refused_with_the_known_ones():
    cell = {"C": Parameter("C", 0.1, "float", 1), "cfg": Parameter("cfg", {}, "dict", 1)}
    with pytest.raises(ParameterError) as caught:
        parameter_values(cell, [("epochs", "3")], NOTEBOOK)
    assert str(caught.value) == f"{NOTEBOOK}: parameter 'epochs': unknown parameter (known: C, cfg)"
    with pytest.raises(ParameterError, match=r"there are none: tag a cell `parameters`"):
        known_parameter({}, "C", NOTEBOOK)
    with pytest.raises(ParameterError, match="must be a Python identifier"):
        parameter_values(cell, {"C; import os": 1}, NOTEBOOK)
    assert parameter_values(cell, {"C": "1e-3", "cfg": "{'a': 1}"}) == {"C": 0.001,
                                                                      "cfg": {"a": 1}}


def test_without_a_notebook_the_message_starts_at_the_parameter():
    with pytest.raises(ParameterError) as caught:
        parameter_value(_param("int", 3), "x")
    assert str(caught.value).startswith("parameter 'value': expected an int")


# --- properties -------------------------------------------------------------------------------

_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=4),
    max_leaves=12)


@given(st.integers())
def test_any_int_text_reads_back(number):
    assert _read("int", str(number)) == number
    assert _read("float", str(number)) == float(number)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_text_reads_back(number):
    assert _read("float", repr(number)) == number
    assert _read("float", number) == number


@given(st.text())
def test_a_str_parameter_takes_any_text_as_is(text):
    assert _read("str", text) == text


@given(st.lists(_plain, max_size=5))
def test_a_list_reads_back_from_json_and_from_its_python_literal(items):
    assert _read("list", json.dumps(items)) == items
    assert _read("list", repr(items)) == items
    assert _read("list", items) == items


@given(st.dictionaries(st.text(max_size=6), _plain, max_size=5))
def test_a_dict_reads_back_from_json_and_from_its_python_literal(mapping):
    assert _read("dict", json.dumps(mapping)) == mapping
    assert _read("dict", repr(mapping)) == mapping


@given(st.text(), st.sampled_from(["int", "float", "bool", "list", "dict"]))
def test_any_text_is_read_or_refused_with_the_grammars_message(text, kind):
    try:
        value = _read(kind, text)
    except ParameterError as error:
        assert str(error).startswith(f"{NOTEBOOK}: parameter 'value': ")
    else:
        assert type(value).__name__ == kind


@given(_plain)
def test_reading_a_value_twice_changes_nothing_for_typed_parameters(value):
    kind = {bool: "bool", int: "int", float: "float", str: "str", list: "list",
            dict: "dict"}.get(type(value))
    if kind is not None:
        once = _read(kind, value)
        assert _read(kind, once) == once


def test_a_long_value_is_cut_in_the_message():
    message = _refusal("int", "9" * 10_000 + "x", default=3)
    assert len(message) < 400 and message.endswith("...x' (the default is 3)")
