"""labkit's short public list: every name resolves, unknown names fail clearly."""

import subprocess
import sys

import pytest

import labkit


@pytest.mark.parametrize("name", labkit.__all__)
def test_every_exported_name_resolves_to_its_module(name):
    obj = getattr(labkit, name)
    module = getattr(obj, "__module__", None) or labkit._EXPORTS[name]
    assert module.startswith(labkit._EXPORTS[name])


def test_unknown_name_is_named():
    with pytest.raises(AttributeError, match="no attribute 'GTP'"):
        labkit.GTP  # noqa: B018


def test_import_labkit_viz_does_not_import_torch():
    code = "import labkit.viz, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
