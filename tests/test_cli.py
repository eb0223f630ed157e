"""The labkit command: train, sample, tokenize, run; errors as one line."""

import json
import sys

import pytest

from labkit import cli

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from notebook_factory import make_notebook  # noqa: E402

QUICK = ["--set", "train.steps=4", "--set", "train.warmup_steps=1",
         "--set", "train.eval_every=4", "--set", "train.batch_size=2",
         "--set", "train.eval_batches=1", "--set", "train.progress=false",
         "--set", "model.context_len=16", "--set", "model.n_layers=1",
         "--set", "train.sample_tokens=4"]  # fmt: skip


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("".join(f"note {i}: the cat sat on the mat.\n" for i in range(300)))
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("labkit: error: ") and "\n" not in err
    return err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "sample", "tokenize", "run"):
        assert command in out


def test_train_then_sample_a_local_file(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--corpus", str(corpus), "--tokenizer", "char", "--out", str(run)]
    assert cli.main(args + QUICK) == 0
    record = json.loads((run / "run.json").read_text())
    assert record["train_config"]["steps"] == 4
    assert record["model_config"]["n_layers"] == 1
    assert record["model_config"]["vocab_size"] < 40  # the character set
    capsys.readouterr()
    assert cli.main(["sample", str(run), "--prompt", "note", "--max-new-tokens",
                     "5", "--temperature", "0"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert text.startswith("note") and len(text.rstrip("\n")) >= 5


def test_tokenize_writes_a_manifest(corpus, tmp_path, capsys):
    out = tmp_path / "tok"
    args = ["tokenize", "--corpus", str(corpus), "--tokenizer", "bpe:300"]
    assert cli.main(args + ["--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tokenizer"]["vocab_size"] == 300
    assert "vocab 300" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "train.lrr=1"], "unknown field 'lrr'; valid train fields: steps"),
        (["--set", "optim.lr=1"], "unknown section 'optim'; valid: model, train"),
        (["--set", "train.lr=-1"], "lr=-1.0 must be a non-negative"),
        (["--set", "train.steps=ten"], "'ten' is not a valid int"),
        (["--set", "train.lr"], "not of the form section.field=value"),
        (["--tokenizer", "wordpiece"], "is not one of: byte | char"),
        (["--corpus", "no-such-corpus"], "neither a file nor a known corpus"),
    ],
)
def test_bad_train_input_exits_2_with_one_line(extra, message, tmp_path, capsys):
    args = ["train", "--corpus", "stories", "--out", str(tmp_path / "r")]
    assert cli.main(args + extra) == 2
    assert message in _error(capsys)


def test_sample_without_a_run_folder_fails(tmp_path, capsys):
    assert cli.main(["sample", str(tmp_path)]) == 2
    assert "not a run folder" in _error(capsys)


def test_run_passes_typed_parameters(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_run(notebook, out, params):
        seen.update(notebook=notebook, out=out, params=params)
        return {"length": 6}

    monkeypatch.setattr("labkit.experiments.run_notebook", fake_run)
    nb = make_notebook(tmp_path / "ch.ipynb")
    args = ["run", str(nb), "-p", "n", "2", "-p", "word", "hi", "-o", "o.ipynb"]
    assert cli.main(args) == 0
    assert seen["params"] == {"n": 2, "word": "hi"} and seen["out"] == "o.ipynb"
    assert json.loads(capsys.readouterr().out)["records"] == {"length": 6}


def test_run_with_a_bad_parameter_exits_2(tmp_path, capsys):
    nb = make_notebook(tmp_path / "ch.ipynb")
    assert cli.main(["run", str(nb), "-p", "n", "two"]) == 2
    assert "n" in _error(capsys)
    assert cli.main(["run", str(tmp_path / "missing.ipynb")]) == 2
    assert "missing.ipynb" in _error(capsys)
