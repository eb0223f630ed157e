"""The run folder that ``labkit train`` makes, as a whole.

Besides what ``train`` writes (run.json, the logs, checkpoints/), the command
keeps the run's inputs beside them, so the folder alone is enough to sample
from or to resume:

    tokenizer.json   the tokenizer (byte-level BPE or characters)
    tokens/          the tokenized corpus (labkit.data.prepare_tokens)

``check_run_folder`` refuses a new run in a folder that holds one and a
resume of a folder that holds none; ``resume_inputs`` checks that the
tokenizer and corpus given now are the run's own, before anything is written
(a resume that fails leaves the folder as it was); ``load_run`` opens the
newest checkpoint with its tokenizer. Errors name the file and the choices.
Built in: README.md ("Train from the command line").
"""

import hashlib
import os
from pathlib import Path

from labkit.data import TokenData, prepare_tokens, tokenizer_hash
from labkit.tokenizer import CharTokenizer, Tokenizer
from labkit.train.checkpoint import list_checkpoints, model_from_checkpoint
from labkit.train.files import read_json
from labkit.train.runlog import existing_run


def check_run_folder(out: Path, resume: bool) -> None:
    """Raise ValueError for a new run over an existing one, or a resume of
    a folder that holds no run."""
    held = existing_run(out)
    if held and not resume:
        raise ValueError(
            f"{out} already holds a run ({held}): add --resume to continue it, "
            f"or give another --out folder (or delete {out} to start over)"
        )
    if resume and not held:
        raise ValueError(
            f"--resume: {out} holds no run to continue; leave out --resume to "
            f"start one there"
        )


def load_tokenizer(path: Path):
    """A tokenizer.json of either kind (byte-level BPE or characters)."""
    kind = read_json(path, "a tokenizer file").get("format", "")
    return CharTokenizer.load(path) if "char" in str(kind) else Tokenizer.load(path)


def save_inputs(out: Path, text: str, tokenizer, seed: int) -> TokenData:
    """A new run's tokenizer.json (written atomically) and tokens/."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(out / "tokenizer.json.tmp")
    os.replace(out / "tokenizer.json.tmp", out / "tokenizer.json")
    return prepare_tokens(text, tokenizer, out / "tokens", seed=seed)


def resume_inputs(out: Path, text: str, tokenizer, choice: str) -> TokenData:
    """The run's saved tokens, once the tokenizer and corpus given now are
    shown to be the run's own (ValueError naming the file otherwise).
    Nothing is written."""
    saved = load_tokenizer(out / "tokenizer.json")
    if tokenizer_hash(saved) != tokenizer_hash(tokenizer):
        raise ValueError(
            f"--resume: --tokenizer {choice} is not the tokenizer of this run "
            f"({out / 'tokenizer.json'}, vocab {saved.vocab_size}); resume with "
            f"the run's own --tokenizer and --corpus"
        )
    data = TokenData.load(out / "tokens")
    digest = hashlib.sha256(text.encode()).hexdigest()
    sources = data.manifest.get("sources", [])
    if [s.get("sha256") for s in sources if isinstance(s, dict)] != [digest]:
        raise ValueError(
            f"--resume: --corpus is not the text this run was tokenized from "
            f"({out / 'tokens' / 'manifest.json'}); resume with the run's --corpus"
        )
    return data


def load_run(run: Path):
    """(model, tokenizer) of a run folder's newest checkpoint, all checked."""
    found = list_checkpoints(run / "checkpoints")
    if not found or not (run / "tokenizer.json").exists():
        raise ValueError(
            f"{run} has no checkpoint and tokenizer: not a run folder "
            f"made by `labkit train`"
        )
    model = model_from_checkpoint(found[-1])
    tokenizer = load_tokenizer(run / "tokenizer.json")
    if tokenizer.vocab_size > model.cfg.vocab_size:
        raise ValueError(
            f"{run / 'tokenizer.json'} has {tokenizer.vocab_size} tokens, the "
            f"model of {found[-1]} only {model.cfg.vocab_size}: not this run's"
        )
    return model, tokenizer
