"""The ``labkit`` command: train, sample, tokenize, run or sweep a notebook.

    labkit train --corpus stories --tokenizer byte --preset tiny \\
        --set train.steps=300 --set model.n_layers=3 --out runs/first
    labkit sample runs/first --prompt "Once upon a time" --temperature 0.8
    labkit tokenize --corpus notes.txt --tokenizer bpe:512 --out tokens/notes
    labkit run notebooks/11_training_loop.ipynb -p steps 100 -o out.ipynb
    labkit sweep notebooks/experiments/train_one.ipynb -p lr 0.001,0.003

``--set section.field=value`` changes one field of the model config
(``model.``, labkit.model.GPTConfig) or the training config (``train.``,
labkit.train.TrainConfig); an unknown key fails with the list of valid ones.
Bad input exits with status 2 and one line: ``labkit: error: ...``.
Each command is one ``add_<name>`` function that registers its subparser and
sets its handler; ``labkit sweep`` lives in labkit.sweep.
"""

import argparse
import dataclasses
import json
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


def load_tokenizer(path: Path):
    from labkit.tokenizer import CharTokenizer, Tokenizer

    kind = json.loads(path.read_text()).get("format", "")
    return CharTokenizer.load(path) if "char" in kind else Tokenizer.load(path)


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
        return tuple(s for s in text.split(",") if s)
    try:
        return annotation(text)
    except (TypeError, ValueError):
        raise CLIError(f"{text!r} is not a valid {annotation.__name__}") from None


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
    p.add_argument("--out", required=True, help="the run folder")
    p.add_argument("--resume", action="store_true", help="continue the run")
    p.set_defaults(handler=cmd_train)


def cmd_train(args) -> int:
    from labkit.data import prepare_tokens
    from labkit.model import GPT, PRESETS
    from labkit.train import TrainConfig, train

    out = Path(args.out)
    text = load_corpus(args.corpus)
    tokenizer = make_tokenizer(args.tokenizer, text)
    model_cfg = dataclasses.replace(
        PRESETS[args.preset], vocab_size=tokenizer.vocab_size
    )
    configs = apply_overrides(
        {"model": model_cfg, "train": TrainConfig(out_dir=str(out))}, args.set
    )
    cfg = dataclasses.replace(configs["train"], out_dir=str(out), resume=args.resume)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(out / "tokenizer.json")
    data = prepare_tokens(text, tokenizer, out / "tokens", seed=cfg.seed)
    import torch

    torch.manual_seed(cfg.seed)
    result = train(GPT(configs["model"]), data, cfg, tokenizer=tokenizer)
    last = result.evals[-1] if result.evals else {}
    print(
        f"trained {result.step} steps in {result.wall_s:.1f} s; "
        f"val loss {last.get('val_loss', float('nan')):.4f}; run folder {out}"
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
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_sample)


def cmd_sample(args) -> int:
    from labkit.model import GPT, GPTConfig
    from labkit.sampling import stream_text
    from labkit.train.checkpoint import list_checkpoints, load_checkpoint

    run = Path(args.run)
    found = list_checkpoints(run / "checkpoints")
    if not found or not (run / "tokenizer.json").exists():
        raise CLIError(
            f"{run} has no checkpoint and tokenizer: not a run folder "
            f"made by `labkit train`"
        )
    info = json.loads((found[-1] / "state.json").read_text())
    model = GPT(GPTConfig(**info["model_config"]))
    load_checkpoint(found[-1], model)
    tokenizer = load_tokenizer(run / "tokenizer.json")
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
    tokenizer.save(Path(args.out) / "tokenizer.json")
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


def literal(text: str):
    """'3' -> 3, '0.1' -> 0.1, 'true' -> True, 'none' -> None, else the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def cmd_run(args) -> int:
    from labkit.experiments import run_notebook

    notebook = Path(args.notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook {notebook}")
    out = args.out or str(notebook.with_suffix(".out.ipynb"))
    records = run_notebook(notebook, out, {k: literal(v) for k, v in args.p})
    print(json.dumps({"out": out, "records": records}, default=str))
    return 0


# --- entry point -------------------------------------------------------------------
def add_sweep(sub) -> None:
    from labkit.sweep import add_sweep_command

    add_sweep_command(sub)


COMMANDS = [add_train, add_sample, add_tokenize, add_run, add_sweep]


EXAMPLES = """examples:
  labkit train --corpus stories --tokenizer byte --preset tiny \\
      --set train.steps=300 --out runs/first
  labkit sample runs/first --prompt "Once upon a time" --temperature 0.8
  labkit tokenize --corpus notes.txt --tokenizer bpe:512 --out tokens/notes
  labkit run notebooks/11_training_loop.ipynb -p steps 100 -o out.ipynb
  labkit sweep notebooks/experiments/train_one.ipynb -p lr 0.001,0.003"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="LLM Lab's command line: train a small GPT, sample from it, "
        "tokenize a corpus, run a chapter with parameters or over a grid. "
        "`labkit COMMAND --help` explains each command.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError, OSError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"labkit: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
