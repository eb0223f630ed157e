"""The labkit command: train, sample, tokenize, run; errors as one line."""

import json
import re
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
    listed = re.findall(r"^    (\w+) +\w", out, re.M)  # "    train   train a GPT"
    assert listed == ["train", "sample", "tokenize", "run", "sweep"]
    parser = cli.build_parser()
    handlers = {
        "train": ["train", "--out", "r"],
        "sample": ["sample", "r"],
        "tokenize": ["tokenize", "--out", "t"],
        "run": ["run", "nb.ipynb"],
        "sweep": ["sweep", "nb.ipynb"],
    }
    for name, argv in handlers.items():
        assert parser.parse_args(argv).handler is getattr(cli, f"cmd_{name}")


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


# --- a run folder is never lost or mixed ------------------------------------------
@pytest.fixture(scope="module")
def _trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-run")
    corpus = root / "notes.txt"
    corpus.write_text(
        "".join(f"note {i}: the cat sat on the mat.\n" for i in range(300))
    )
    run = root / "run"
    args = ["train", "--corpus", str(corpus), "--tokenizer", "char", "--out", str(run)]
    assert cli.main(args + QUICK) == 0
    return corpus, run


@pytest.fixture
def trained(_trained, tmp_path):
    """(corpus, a copy of a finished 4-step char-level run folder)."""
    import shutil

    corpus, run = _trained
    return corpus, shutil.copytree(run, tmp_path / "run")


def _snapshot(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file()
    }


def _train(corpus, run, *extra):
    args = ["train", "--corpus", str(corpus), "--tokenizer", "char", "--out", str(run)]
    return cli.main(args + QUICK + list(extra))


def test_train_refuses_a_folder_that_holds_a_run(trained, capsys):
    corpus, run = trained
    before = _snapshot(run)
    assert _train(corpus, run) == 2
    err = _error(capsys)
    assert (
        "already holds a run (run.json, metrics.jsonl, samples.jsonl, 1 checkpoint"
        in err
    )
    assert "add --resume to continue it, or give another --out folder" in err
    assert _snapshot(run) == before


@pytest.mark.parametrize(
    "change, message",
    [
        (["--tokenizer", "byte"], "--tokenizer byte is not the tokenizer of this run"),
        (["--corpus", "OTHER"], "--corpus is not the text this run was tokenized from"),
        (
            ["--set", "model.d_model=32"],
            "d_model: 64 (checkpoint) -> 32 (now)",
        ),
        (["--set", "train.steps=3"], "its step 4 is past the end of this run"),
    ],
)
def test_a_resume_that_fails_writes_nothing(change, message, trained, tmp_path, capsys):
    corpus, run = trained
    other = tmp_path / "other.txt"
    other.write_text("".join(reversed(corpus.read_text().splitlines(True))))
    change = [str(other) if c == "OTHER" else c for c in change]
    before = _snapshot(run)
    args = ["train", "--corpus", str(corpus), "--tokenizer", "char", "--out", str(run)]
    assert cli.main(args + QUICK + change + ["--resume"]) == 2
    assert message in _error(capsys)
    assert _snapshot(run) == before


def test_resume_continues_and_a_finished_run_says_so(trained, capsys):
    corpus, run = trained
    assert _train(corpus, run, "--resume") == 0
    assert "already at step 4 of train.steps=4" in capsys.readouterr().out
    assert _train(corpus, run, "--resume", "--set", "train.steps=8") == 0
    assert "trained 8 steps" in capsys.readouterr().out
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").open()]
    assert steps == list(range(1, 9))


def test_resume_of_an_empty_folder_fails(corpus, tmp_path, capsys):
    assert _train(corpus, tmp_path / "new", "--resume") == 2
    assert "holds no run to continue" in _error(capsys)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "train.lr=nan"], "--set train.lr: 'nan' is not a finite number"),
        (["--set", "train.grad_clip=inf"], "'inf' is not a finite number"),
        (["--set", "train.device=gpu"], "device='gpu' is not a device; use auto, cpu"),
        (["--set", "train.device=cuda:99"], "device='cuda:99' is not on this machine"),
        (["--set", "model.vocab_size=10"], "model.vocab_size=10 is smaller than the"),
        (["--set", "model.context_len=2000"], "the val split has"),
    ],
)
def test_bad_values_fail_before_training(extra, message, corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(corpus, run, *extra) == 2
    assert message in _error(capsys)
    assert not (run / "run.json").exists() and not (run / "checkpoints").exists()


def test_a_json_list_of_prompts_is_parsed(corpus, tmp_path):
    run = tmp_path / "run"
    assert _train(corpus, run, "--set", 'train.sample_prompts=["note", "the cat"]') == 0
    record = json.loads((run / "run.json").read_text())
    assert record["train_config"]["sample_prompts"] == ["note", "the cat"]


# --- labkit sample: bad arguments and bad files -----------------------------------
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max-new-tokens", "0"], "--max-new-tokens 0 must be at least 1"),
        (["--temperature", "nan"], "--temperature=nan must be a finite number"),
        (["--top-p", "2"], "--top-p=2.0 must be in (0, 1]"),
        (["--top-k", "0"], "--top-k=0 must be a positive integer"),
        (["--device", "cuda:99"], "device='cuda:99' is not on this machine"),
    ],
)
def test_bad_sample_arguments_exit_2(extra, message, trained, capsys):
    assert cli.main(["sample", str(trained[1]), *extra]) == 2
    assert message in _error(capsys)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("model.safetensors", b"", "is not a safetensors file: it is empty"),
        ("model.safetensors", b"\x80\x04K\x01.", "it is a Python pickle"),
        ("model.safetensors", b"PK\x03\x04junk", "it is a zip archive"),
        (
            "model.safetensors",
            b"\x10\x00\x00\x00\x00\x00\x00\x00{",
            "cut short or garbled",
        ),
        ("state.json", b'{"format": "labkit.checkpoint/1", "st', "is not valid JSON"),
        ("state.json", b"[]", "holds a JSON list"),
        (
            "state.json",
            b'{"format": "labkit.checkpoint/1", "step": 4}',
            "no 'optimizer'",
        ),
    ],
)
def test_sample_names_a_bad_checkpoint_file(name, content, message, trained, capsys):
    ckpt = trained[1] / "checkpoints" / "step_000004"
    (ckpt / name).write_bytes(content)
    assert cli.main(["sample", str(trained[1])]) == 2
    err = _error(capsys)
    assert str(ckpt / name) in err and message in err


def test_sample_refuses_weights_with_nan(trained, capsys):
    from safetensors.torch import load_file, save_file

    path = trained[1] / "checkpoints" / "step_000004" / "model.safetensors"
    tensors = load_file(str(path))
    tensors["norm_f.weight"][0] = float("nan")
    save_file(tensors, str(path))
    assert cli.main(["sample", str(trained[1])]) == 2
    assert "'norm_f.weight' holds 1 NaN or inf values" in _error(capsys)


# --- the top-level handler --------------------------------------------------------
def test_any_labkit_error_is_one_line_and_exit_2(monkeypatch, capsys):
    from labkit.experiments import NotebookFailed

    def fails(args):
        raise NotebookFailed("ch.ipynb", "out.ipynb", 5, 4, "KeyError", "'x'\nmore")

    monkeypatch.setattr(cli, "cmd_tokenize", fails)
    assert cli.main(["tokenize", "--out", "x"]) == 2
    assert _error(capsys) == (
        "labkit: error: ch.ipynb failed in cell 5 (In [4]) with KeyError: 'x' "
        "(the executed notebook, with the traceback: out.ipynb)"
    )


def test_a_bug_keeps_its_traceback(monkeypatch):
    def bug(args):
        raise ZeroDivisionError("a bug in labkit, not bad input")

    monkeypatch.setattr(cli, "cmd_tokenize", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["tokenize", "--out", "x"])


@pytest.mark.slow
def test_run_of_a_notebook_that_raises_names_the_cell(tmp_path, capsys):
    body = ("x = 1", "raise KeyError('no such column')", "print('never')")
    nb = make_notebook(tmp_path / "ch.ipynb", body=body)
    out = tmp_path / "out.ipynb"
    assert cli.main(["run", str(nb), "-o", str(out)]) == 2
    err = _error(capsys)
    assert f"{nb} failed in cell 4 (In [3])" in err
    assert "with KeyError: 'no such column'" in err and str(out) in err
