"""labkit.train.files: atomic writes; reads that name the file and the fault."""

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from labkit.train.files import (
    FileFormatError,
    read_json,
    read_safetensors,
    require,
    write_json_atomic,
)


def test_write_json_atomic_never_opens_the_target_for_writing(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    write_json_atomic(path, {"a": 1})
    replaced = []
    real_replace = os.replace

    def replace(src, dst):
        replaced.append((os.path.basename(src), os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_json_atomic(path, {"a": 2})
    assert replaced == [("run.json.tmp", "run.json")]
    assert read_json(path) == {"a": 2} and not (tmp_path / "run.json.tmp").exists()


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "is empty"),
        (
            b'{"a": ',
            r"not valid JSON \(cut short or garbled\): Expecting value at line 1",
        ),
        (b"\xff\xfe{}", "not UTF-8"),
        (pickle.dumps({"a": 1}), "is a Python pickle"),
        (b"PK\x03\x04rest", "is a zip archive"),
        (b"[1, 2]", "holds a JSON list, not a JSON object"),
    ],
)
def test_read_json_names_the_file_and_the_fault(raw, message, tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(raw)
    with pytest.raises(FileFormatError, match=message) as err:
        read_json(path)
    assert str(err.value).startswith(str(path))


def test_require_checks_presence_and_type(tmp_path):
    require({"step": 4}, {"step": int}, tmp_path)
    with pytest.raises(FileFormatError, match="has no 'step' entry"):
        require({}, {"step": int}, tmp_path)
    with pytest.raises(FileFormatError, match="'step' is True, expected int"):
        require({"step": True}, {"step": int}, tmp_path)


def test_read_safetensors_refuses_nan_and_names_the_tensor(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.ones(3), "b": torch.tensor([1.0, float("inf")])}, str(path))
    with pytest.raises(FileFormatError, match=r"tensor 'b' holds 1 NaN or inf"):
        read_safetensors(path)
    save_file({"ids": torch.arange(3)}, str(path), metadata={"k": "v"})
    tensors, meta = read_safetensors(path)
    assert tensors["ids"].tolist() == [0, 1, 2] and meta == {"k": "v"}
    with pytest.raises(FileNotFoundError, match="missing"):
        read_safetensors(tmp_path / "nope.safetensors")


def test_a_safetensors_file_whose_first_byte_looks_like_a_pickle_loads(tmp_path):
    """The header length's low byte can be 0x80, a pickle's first byte."""
    import torch
    from safetensors.torch import save_file

    from labkit.train.files import read_safetensors

    path = tmp_path / "model.safetensors"
    for pad in range(0, 400, 8):
        save_file({"w": torch.ones(2)}, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    assert path.read_bytes()[:1] == b"\x80"
    tensors, metadata = read_safetensors(path)
    assert torch.equal(tensors["w"], torch.ones(2))
