"""The ``labkit`` command: train, sample, tokenize, run or sweep a notebook.

    labkit train --corpus stories --tokenizer byte --preset tiny \\
        --set train.steps=300 --set model.n_layers=3 --out runs/first
    labkit sample runs/first --prompt "Once upon a time" --temperature 0.8
    labkit tokenize --corpus notes.txt --tokenizer bpe:512 --out tokens/notes
    labkit run notebooks/11_training_loop.ipynb -p steps 100 -o out.ipynb
    labkit sweep notebooks/experiments/train_one.ipynb -p lr 0.001,0.003
    labkit export-web runs/first -o web/first

``--set section.field=value`` changes one field of the model config
(``model.``, labkit.model.GPTConfig) or the training config (``train.``,
labkit.train.TrainConfig); an unknown key fails with the list of valid ones.
Bad input, and any error labkit raises (a bad file, a run that exists, a
notebook cell that fails), exits with status 2 and one line:
``labkit: error: ...``. Every value is checked before work starts.
Each command is one ``add_<name>`` function that registers its subparser and
sets its handler; a handler imports what it runs. The run folder's layout and
checks live in labkit.train.runfolder.
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import typing
from pathlib import Path

TOKENIZERS = "byte | char | bpe:N (byte-level BPE with a vocabulary of N)"


class CLIError(ValueError):
    """Bad command-line input; main prints it as one line."""


# --- shared helpers ----------------------------------------------------------
def load_corpus(name_or_path: str) -> str:
    """A registered corpus name (labkit.corpora) or a local text file."""
    from labkit import corpora

    path = Path(name_or_path)
    if path.is_file():
        return corpora.read_text(path)
    if name_or_path in corpora.CORPORA:
        return corpora.load_text(name_or_path)
    raise CLIError(
        f"corpus {name_or_path!r} is neither a file nor a known corpus "
        f"({', '.join(corpora.CORPORA)})"
    )


def make_tokenizer(choice: str, text: str):
    from labkit.tokenizer import CharTokenizer, Tokenizer, train_bpe_fast

    if choice == "byte":
        return Tokenizer()
    if choice == "char":
        return CharTokenizer.from_text(text)
    if choice.startswith("bpe:") and choice[4:].isdigit() and int(choice[4:]) > 256:
        return train_bpe_fast(text, int(choice[4:]))
    raise CLIError(f"--tokenizer {choice!r} is not one of: {TOKENIZERS}")


def parse_value(text: str, annotation):
    """Convert ``text`` to a dataclass field's type (int, float, bool, str,
    tuple of str, or any of these | None)."""
    args = typing.get_args(annotation)
    if text.lower() == "none" and type(None) in args:
        return None
    if args and type(None) in args:
        annotation = next(a for a in args if a is not type(None))
    if annotation is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise CLIError(f"{text!r} is not a boolean (true or false)")
        return text.lower() in ("true", "1")
    if typing.get_origin(annotation) is tuple:
        return parse_list(text)
    try:
        value = annotation(text)
    except (TypeError, ValueError):
        raise CLIError(f"{text!r} is not a valid {annotation.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise CLIError(f"{text!r} is not a finite number")
    return value


def parse_list(text: str) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'); a JSON list ('["ROMEO:", "JULIET:"]') as written."""
    if not text.startswith("["):
        return tuple(s for s in text.split(",") if s)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(f"{text!r} is not a JSON list ({e.msg})") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise CLIError(f"{text!r} is not a JSON list of strings")
    return tuple(items)


def apply_overrides(configs: dict, sets: list[str]) -> dict:
    """Apply ``section.field=value`` strings to {section: frozen dataclass}."""
    changes: dict[str, dict] = {section: {} for section in configs}
    for item in sets:
        key, sep, text = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise CLIError(f"--set {item!r} is not of the form section.field=value")
        if section not in configs:
            raise CLIError(
                f"--set {key}: unknown section {section!r}; valid: {', '.join(configs)}"
            )
        fields = [f.name for f in dataclasses.fields(configs[section])]
        if name not in fields:
            raise CLIError(
                f"--set {key}: unknown field {name!r}; valid {section} fields: "
                f"{', '.join(fields)}"
            )
        hints = typing.get_type_hints(type(configs[section]))
        try:
            changes[section][name] = parse_value(text, hints[name])
        except CLIError as e:
            raise CLIError(f"--set {key}: {e}") from None
    # all of a section's changes at once: each field is checked with the others
    return {s: dataclasses.replace(c, **changes[s]) for s, c in configs.items()}


# --- labkit train ---------------------------------------------------------------
def add_train(sub) -> None:
    from labkit.model import PRESETS

    p = sub.add_parser(
        "train",
        help="train a GPT on a corpus",
        description="Train a GPT. The run folder gets run.json, metrics.jsonl, "
        "samples.jsonl, checkpoints/ and the tokenizer; "
        "`labkit sample RUN` then writes text with it.",
    )
    p.add_argument("--corpus", default="stories", help="corpus name or text file")
    p.add_argument("--tokenizer", default="byte", help=TOKENIZERS)
    p.add_argument("--preset", default="tiny", choices=list(PRESETS), help="model")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=V",
        help="override a model.* or train.* field (repeatable)",
    )
    p.add_argument("--out", required=True, help="the run folder (a new one)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.set_defaults(handler=cmd_train)


def train_configs(args) -> tuple:
    """(model config, train config) from --preset and --set, checked."""
    from labkit.model import PRESETS
    from labkit.train import TrainConfig, pick_device

    configs = apply_overrides(
        {"model": PRESETS[args.preset], "train": TrainConfig(out_dir=args.out)},
        args.set,
    )
    cfg = dataclasses.replace(configs["train"], out_dir=args.out, resume=args.resume)
    pick_device(cfg.device)  # a device this machine lacks fails now
    return configs["model"], cfg


def cmd_train(args) -> int:
    import torch

    from labkit.model import GPT
    from labkit.train import runfolder, train

    out = Path(args.out)
    runfolder.check_run_folder(out, args.resume)
    model_cfg, cfg = train_configs(args)
    text = load_corpus(args.corpus)
    tokenizer = make_tokenizer(args.tokenizer, text)
    if not any(s.startswith("model.vocab_size=") for s in args.set):
        model_cfg = dataclasses.replace(model_cfg, vocab_size=tokenizer.vocab_size)
    elif model_cfg.vocab_size < tokenizer.vocab_size:
        raise CLIError(
            f"--set model.vocab_size={model_cfg.vocab_size} is smaller than the "
            f"tokenizer's vocabulary ({tokenizer.vocab_size} tokens)"
        )
    if args.resume:
        data = runfolder.resume_inputs(out, text, tokenizer, args.tokenizer)
    else:
        data = runfolder.save_inputs(out, text, tokenizer, cfg.seed)
    torch.manual_seed(cfg.seed)
    result = train(GPT(model_cfg), data, cfg, tokenizer=tokenizer)
    if not result.evals:
        print(f"{out} is already at step {result.step} of train.steps={cfg.steps}")
        return 0
    print(
        f"trained {result.step} steps in {result.wall_s:.1f} s; "
        f"val loss {result.evals[-1]['val_loss']:.4f}; run folder {out}"
    )
    return 0


# --- labkit sample ------------------------------------------------------------
def add_sample(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="write text with a trained run",
        description="Continue a prompt with the newest checkpoint "
        "of a run folder made by `labkit train`.",
    )
    p.add_argument("run", help="run folder")
    p.add_argument("--prompt", default="Once upon a time")
    p.add_argument("--max-new-tokens", type=int, default=200, help="at least 1")
    p.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N, mps")
    p.set_defaults(handler=cmd_sample)


def cmd_sample(args) -> int:
    from labkit.sampling import check_sampling, stream_text
    from labkit.train import pick_device
    from labkit.train.runfolder import load_run

    if args.max_new_tokens < 1:
        raise CLIError(f"--max-new-tokens {args.max_new_tokens} must be at least 1")
    try:
        check_sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p)
    except ValueError as e:
        raise CLIError(f"--{str(e).replace('_', '-')}") from None
    device = pick_device(args.device)
    model, tokenizer = load_run(Path(args.run))
    model.to(device)
    print(args.prompt, end="", flush=True)
    for piece in stream_text(
        model,
        tokenizer,
        args.prompt,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    ):
        print(piece, end="", flush=True)
    print()
    return 0


# --- labkit tokenize ------------------------------------------------------------
def add_tokenize(sub) -> None:
    p = sub.add_parser(
        "tokenize",
        help="tokenize a corpus into train/val files",
        description="Write train.bin, val.bin, manifest.json and "
        "tokenizer.json into --out (labkit.data.prepare_tokens).",
    )
    p.add_argument("--corpus", default="stories", help="corpus name or text file")
    p.add_argument("--tokenizer", default="byte", help=TOKENIZERS)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_tokenize)


def cmd_tokenize(args) -> int:
    from labkit.data import prepare_tokens

    text = load_corpus(args.corpus)
    tokenizer = make_tokenizer(args.tokenizer, text)
    data = prepare_tokens(text, tokenizer, args.out, args.val_fraction, args.seed)
    out = Path(args.out)
    tokenizer.save(out / "tokenizer.json.tmp")  # then renamed: never half a file
    os.replace(out / "tokenizer.json.tmp", out / "tokenizer.json")
    files = data.manifest["files"]
    print(
        f"{args.out}: vocab {data.vocab_size}, train {files['train']['tokens']} "
        f"tokens, val {files['val']['tokens']} tokens, "
        f"{data.bytes_per_token('train'):.3f} bytes/token"
    )
    return 0


# --- labkit run -------------------------------------------------------------------
def add_param_option(parser, value_name: str, help: str) -> None:
    """The repeatable ``-p NAME VALUE`` of ``labkit run`` and ``labkit sweep``."""
    parser.add_argument(
        "-p",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", value_name),
        help=help,
    )


def add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a chapter notebook with parameters",
        description="Run a notebook with papermill after checking "
        "the parameters against its parameters cell.",
    )
    p.add_argument("notebook")
    add_param_option(p, "VALUE", "set a parameter (repeatable)")
    p.add_argument(
        "-o",
        "--out",
        default=None,
        help="executed notebook (default: NOTEBOOK.out.ipynb)",
    )
    p.set_defaults(handler=cmd_run)


def cmd_run(args) -> int:
    from labkit.experiments import literal, run_notebook

    notebook = Path(args.notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook {notebook}")
    out = args.out or str(notebook.with_suffix(".out.ipynb"))
    records = run_notebook(notebook, out, {k: literal(v) for k, v in args.p})
    print(json.dumps({"out": out, "records": records}, default=str))
    return 0


# --- labkit sweep -----------------------------------------------------------------
def add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a notebook over a grid of parameters",
        description="Run NOTEBOOK once per combination of the -p values with "
        "papermill, WORKERS kernels at a time; results.csv/results.json in the "
        "sweep folder. Points already done with the same code are reused.",
        epilog="example: labkit sweep notebooks/experiments/train_one.ipynb "
        "-p lr 0.001,0.003 -p d_model 32,64 --workers 2",
    )
    p.add_argument("notebook")
    add_param_option(
        p, "V1,V2", "a parameter and its comma-separated values (repeatable)"
    )
    p.add_argument("--workers", type=int, default=2, help="parallel runs")
    p.add_argument(
        "--out",
        default=None,
        help="sweep folder (default: _build/sweeps/NOTEBOOK_NAME)",
    )
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args) -> int:
    from labkit.experiments import literal
    from labkit.sweep import default_folder, failed, sweep

    grid = {name: [literal(v) for v in values.split(",")] for name, values in args.p}
    rows = sweep(args.notebook, grid, out_dir=args.out, workers=args.workers)
    folder = Path(args.out or default_folder(args.notebook))
    for row in rows:
        params = ", ".join(f"{k}={row[k]}" for k in grid)
        note = "reused" if row["reused"] else f"{row['seconds']} s"
        print(f"{row['status']:6} {params} ({note}) {row['error']}".rstrip())
    print(f"{len(rows)} runs, {len(failed(rows))} failed: {folder / 'results.csv'}")
    return 1 if failed(rows) else 0


# --- labkit export-web ----------------------------------------------------------
def add_export_web(sub) -> None:
    p = sub.add_parser(
        "export-web",
        help="export a trained run for a web page (the model runs in the browser)",
        description="Write the newest checkpoint of RUN (a run folder made by "
        "`labkit train`; `--recipe small` for labkit's small model, `--recipe sft` "
        "for it instruction-tuned) as "
        "files a page reads: model.json (config, tokenizer), model.safetensors, "
        "labkit's reference logits, and a page, index.html, that runs the model "
        "in the browser with labkit-live.js (labkit.webexport).",
    )
    p.add_argument("run", nargs="?", default=None, help="run folder")
    p.add_argument(
        "--recipe", choices=["small", "sft"], default=None, help="instead of RUN"
    )
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    p.add_argument("--name", default=None, help="model name (default: the folder's)")
    p.set_defaults(handler=cmd_export_web)


def cmd_export_web(args) -> int:
    from labkit import webexport

    if (args.run is None) == (args.recipe is None):
        raise CLIError("give a run folder or --recipe small|sft (one of the two)")
    kw = dict(dtype=args.dtype, page=True)
    if args.name:
        kw["name"] = args.name
    if args.recipe:
        spec = webexport.export_source(args.recipe, args.out, **kw)
    else:
        if not Path(args.run).is_dir():
            raise CLIError(f"{args.run} is not a folder (a run made by `labkit train`)")
        spec = webexport.export_run(args.run, args.out, **kw)
    size = (Path(args.out) / spec["weights"]).stat().st_size
    print(
        f"{args.out}: {spec['description']}, {spec['n_params']:,} parameters, "
        f"{spec['dtype']} weights {size / 1e6:.2f} MB. Open {args.out}/index.html, "
        f"or serve it: python -m http.server -d {args.out}"
    )
    return 0


# --- entry point -------------------------------------------------------------------
COMMANDS = [add_train, add_sample, add_tokenize, add_run, add_sweep, add_export_web]


EXAMPLES = """examples:
  labkit train --corpus stories --tokenizer byte --preset tiny \\
      --set train.steps=300 --out runs/first
  labkit sample runs/first --prompt "Once upon a time" --temperature 0.8
  labkit tokenize --corpus notes.txt --tokenizer bpe:512 --out tokens/notes
  labkit run notebooks/11_training_loop.ipynb -p steps 100 -o out.ipynb
  labkit sweep notebooks/experiments/train_one.ipynb -p lr 0.001,0.003
  labkit export-web runs/first -o web/first"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="LLM Lab's command line: train a small GPT, sample from it, "
        "tokenize a corpus, run a chapter with parameters or over a grid, "
        "export a model for a web page. "
        "`labkit COMMAND --help` explains each command.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def is_labkit_error(e: BaseException) -> bool:
    """Errors that are the input's fault, not labkit's: bad values and files
    (ValueError, OSError) and every error class labkit defines."""
    return isinstance(e, (ValueError, OSError)) or type(e).__module__.startswith(
        "labkit."
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except Exception as e:
        if not is_labkit_error(e):
            raise  # a bug in labkit: the traceback is what a report needs
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"labkit: error: {message or type(e).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
