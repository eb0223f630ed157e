"""labkit's short public list: every name is the object it claims to be, never a
submodule, whatever was imported before; unknown names fail clearly."""

import importlib
import subprocess
import sys
import types
from importlib.util import find_spec

import pytest

import labkit


def test_no_public_name_is_also_a_submodule():
    # labkit.train was the training loop until labkit.train (the package) was
    # imported, and the package from then on
    clashes = [n for n in labkit.__all__ if find_spec(f"labkit.{n}") is not None]
    assert not clashes, f"public names that are also submodules: {clashes}"


@pytest.mark.parametrize("name", labkit.__all__)
def test_every_public_name_is_the_object_its_module_defines(name):
    module = importlib.import_module(labkit._EXPORTS[name])
    obj = getattr(labkit, name)
    assert not isinstance(obj, types.ModuleType), f"labkit.{name} is a module"
    assert obj is getattr(module, name)
    if callable(obj):  # a class or a function, defined where the table says
        assert obj.__name__ == name
        assert obj.__module__.startswith(labkit._EXPORTS[name])


def test_names_are_the_same_before_and_after_every_submodule_is_imported():
    code = (
        "import importlib, labkit\n"
        "before = {n: getattr(labkit, n) for n in labkit.__all__}\n"
        "for m in ('train', 'sweep', 'model', 'sampling', 'tokenizer', 'hf'):\n"
        "    importlib.import_module('labkit.' + m)\n"
        "changed = [n for n in labkit.__all__ if getattr(labkit, n) is not before[n]]\n"
        "print(changed)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_submodules_are_reached_as_attributes_and_by_import():
    from labkit.sweep import sweep
    from labkit.train import train

    assert labkit.train.train is train and labkit.sweep.sweep is sweep
    assert isinstance(labkit.corpora, types.ModuleType)


def test_unknown_name_is_named():
    with pytest.raises(AttributeError, match="no attribute 'GTP'"):
        labkit.GTP  # noqa: B018


def test_import_labkit_viz_does_not_import_torch():
    code = "import labkit.viz, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
