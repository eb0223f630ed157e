"""A small trained model for the later chapters, made by a committed recipe.

``load_small_model()`` returns ``(model, tokenizer)``: a 4-layer byte-level
GPT trained on the generated "stories" corpus. The first call trains it
(about a minute on a laptop CPU, seeded, so every machine gets the same
weights up to floating-point differences between CPU kinds) and caches it
under ``$LABKIT_CACHE/models/<name>/`` (default ``~/.cache/labkit``); later
calls load the cached safetensors in well under a second. The recipe below is
the whole story: change it and the cache name changes with it.
Used by: the chapters on inspecting a trained model and on LoRA.
"""

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch

from labkit.model import GPT, GPTConfig
from labkit.tokenizer import Tokenizer
from labkit.train.config import TrainConfig

SMALL_MODEL = GPTConfig(
    vocab_size=256, context_len=128, n_layers=4, n_heads=4, d_model=128
)
SMALL_TRAIN = TrainConfig(
    steps=600,
    batch_size=16,
    lr=3e-3,
    min_lr=3e-4,
    warmup_steps=50,
    weight_decay=0.1,
    beta2=0.99,
    eval_every=200,
    eval_batches=10,
    seed=1337,
    device="cpu",
    progress=False,
    sample_prompts=("Once upon a time", "One day, Ben"),
)
CORPUS = "stories"
CORPUS_BYTES = 2_000_000  # the first 2 MB of the corpus, cut at a line end


def models_dir() -> Path:
    """$LABKIT_CACHE/models, else ~/.cache/labkit/models."""
    root = os.environ.get("LABKIT_CACHE") or Path.home() / ".cache" / "labkit"
    return Path(root) / "models"


def recipe_name() -> str:
    """small-stories-<hash of the recipe>: a new recipe gets a new folder."""
    recipe = {
        "model": dataclasses.asdict(SMALL_MODEL),
        "train": dataclasses.asdict(SMALL_TRAIN),
        "corpus": [CORPUS, CORPUS_BYTES],
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    return f"small-stories-{digest.hexdigest()[:10]}"


def train_small_model(folder: Path, progress: bool = False) -> None:
    """Run the recipe, writing model.safetensors, config.json and a run folder."""
    from safetensors.torch import save_model

    from labkit.corpora import load_text
    from labkit.data import prepare_tokens
    from labkit.train.loop import train

    text = load_text(CORPUS)
    cut = text.find("\n", CORPUS_BYTES)
    tokenizer = Tokenizer()
    data = prepare_tokens(text[: cut + 1], tokenizer, folder / "tokens", seed=0)
    torch.manual_seed(SMALL_TRAIN.seed)
    model = GPT(SMALL_MODEL)
    cfg = dataclasses.replace(
        SMALL_TRAIN, out_dir=str(folder / "run"), progress=progress, keep_last=1
    )
    train(model, data, cfg, tokenizer=tokenizer)
    save_model(model, str(folder / "model.safetensors.tmp"))
    os.replace(folder / "model.safetensors.tmp", folder / "model.safetensors")
    (folder / "config.json").write_text(
        json.dumps(dataclasses.asdict(SMALL_MODEL), indent=1) + "\n"
    )


def load_small_model(progress: bool = False) -> tuple[GPT, Tokenizer]:
    """The recipe's trained model (in eval mode) and its byte-level tokenizer.

    Trains and caches it on first use; see the module docstring.
    """
    from safetensors.torch import load_model

    folder = models_dir() / recipe_name()
    if not (folder / "model.safetensors").exists():
        folder.mkdir(parents=True, exist_ok=True)
        train_small_model(folder, progress=progress)
    config = GPTConfig(**json.loads((folder / "config.json").read_text()))
    model = GPT(config)
    load_model(model, str(folder / "model.safetensors"))
    return model.eval(), Tokenizer()
