"""labkit.experiments: parameters checked before a run, results read back as data."""

import json

import pytest
from notebook_factory import make_notebook

from labkit.experiments import (
    RECORD_MIME,
    ParameterError,
    Record,
    check_parameters,
    declared_parameters,
    read_records,
    run_notebook,
    validate_parameters,
)


def test_check_parameters_accepts_declared_types():
    ns = {"__annotations__": {"n": "int", "lr": "float", "name": "str"}}
    ns.update(n=3, lr=2, name="x")  # an int is a fine float
    check_parameters(ns)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("n", "abc", "parameter 'n' must be int, got str 'abc'"),
        ("n", True, "parameter 'n' must be int, got bool True"),
        ("lr", "fast", "parameter 'lr' must be float, got str 'fast'"),
    ],
)
def test_check_parameters_names_the_wrong_one(name, value, message):
    ns = {"__annotations__": {"n": int, "lr": float}, "n": 1, "lr": 0.1}
    ns[name] = value
    with pytest.raises(ParameterError) as err:
        check_parameters(ns)
    assert str(err.value) == message


def test_declared_parameters_reads_types_defaults_and_help(tmp_path):
    nb = make_notebook(tmp_path / "ch.ipynb")
    assert declared_parameters(nb) == {
        "n": {"type": "int", "default": "3", "help": "how many"},
        "word": {"type": "str", "default": '"hi"', "help": "a word"},
    }


def test_validate_parameters_rejects_unknown_and_wrong_type(tmp_path):
    nb = make_notebook(tmp_path / "ch.ipynb")
    validate_parameters(nb, {"n": 5, "word": "yo"})
    with pytest.raises(
        ParameterError, match="has no parameter 'm'; it declares: n, word"
    ):
        validate_parameters(nb, {"m": 5})
    with pytest.raises(ParameterError, match="'n' of ch.ipynb must be int, got str"):
        validate_parameters(nb, {"n": "five"})


def test_notebook_without_parameters_cell_is_an_error(tmp_path):
    nb = make_notebook(tmp_path / "ch.ipynb", tag_parameters=False)
    with pytest.raises(ParameterError, match="exactly one cell tagged 'parameters'"):
        declared_parameters(nb)
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        declared_parameters(tmp_path / "missing.ipynb")


def test_run_notebook_injects_parameters_and_returns_records(tmp_path):
    nb = make_notebook(tmp_path / "ch.ipynb")
    out = tmp_path / "runs" / "out.ipynb"
    assert run_notebook(nb, out, {"n": 4, "word": "ab"}) == {"length": 8}
    assert read_records(out) == {"length": 8}


def test_run_notebook_fails_before_running_on_bad_parameters(tmp_path):
    nb = make_notebook(tmp_path / "ch.ipynb")
    out = tmp_path / "out.ipynb"
    with pytest.raises(ParameterError):
        run_notebook(nb, out, {"n": "many"})
    assert not out.exists()


def test_record_bundle_carries_json_data_and_text():
    import numpy as np

    bundle = Record("loss", np.float32(1.5))._repr_mimebundle_()
    assert bundle[RECORD_MIME] == {"loss": 1.5}
    assert bundle["text/plain"] == "loss = 1.5"
    json.dumps(bundle)
    assert Record("curve", np.arange(3))._repr_mimebundle_()[RECORD_MIME] == {
        "curve": [0, 1, 2]
    }


@pytest.mark.parametrize(
    "text, value",
    [("3", 3), ("0.1", 0.1), ("1e-3", 1e-3), ("True", True), ("false", False),
     ("none", None), ("hello", "hello"), ("3x", "3x"), ("[1, 2, 4]", [1, 2, 4]),
     ('{"a": 1}', {"a": 1}), ("[not json", "[not json")],
)  # fmt: skip
def test_literal_reads_command_line_values(text, value):
    from labkit.experiments import literal

    assert literal(text) == value and type(literal(text)) is type(value)


@pytest.mark.slow
def test_a_cell_that_raises_is_notebook_failed_naming_the_cell(tmp_path):
    from labkit.experiments import NotebookFailed

    body = ("x = 1", "raise ValueError('bad value\\nsecond line')")
    nb = make_notebook(tmp_path / "ch.ipynb", body=body)
    out = tmp_path / "out.ipynb"
    with pytest.raises(NotebookFailed) as err:
        run_notebook(nb, out)
    e = err.value
    assert (e.cell, e.exec_count, e.ename) == (4, 3, "ValueError")
    assert str(e) == (
        f"{nb} failed in cell 4 (In [3]) with ValueError: bad value "
        f"(the executed notebook, with the traceback: {out})"
    )
    assert out.exists()
