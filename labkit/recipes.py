"""A small trained model for the later chapters, made by a committed recipe.

``load_small_model()`` returns ``(model, tokenizer)``: a 4-layer byte-level
GPT trained on the generated "stories" corpus. The first call trains it
(600 steps of 16 x 128 tokens: about two minutes on 2 CPU cores, 115 s
in the run record of one such machine; seeded, so every machine gets the
same weights up to floating-point differences between CPU kinds) and caches it
under ``$LABKIT_CACHE/models/<name>/`` (default ``~/.cache/labkit``); later
calls load the cached safetensors in well under a second. The recipe below is
the whole story: change it and the cache name changes with it.
Used by: the chapters on inspecting a trained model and on LoRA.

``load_sft_model()`` is the same idea one step later: the small model with
the chat tokens added (labkit.chat), fine-tuned to answer the story
questions of labkit.instruct with the loss on the answers only (labkit.sft),
through the same training loop, with windows of its own training stories
mixed into every batch so that it keeps writing stories (rehearsal). Its
first call trains it (a few minutes on a laptop CPU, after the small model)
and caches it beside the small model, with the accuracy on fixed validation
questions at every evaluation (``sft_history``). Used by: the chapters on
instruction tuning, preference tuning, and learning from rewards.
"""

import dataclasses
import fcntl
import hashlib
import json
import shutil
from pathlib import Path

import torch

from labkit import instruct
from labkit.corpora import atomic_path, cache_root, load_text, write_atomic
from labkit.model import GPT, GPTConfig
from labkit.threads import torch_threads
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

SFT_SPLITS = {"train": 8000, "val": 200}  # story questions (labkit.instruct)
SFT_SEED = 0  # the dataset's seed; test questions: make_examples("test", n)
SFT_TRAIN = TrainConfig(
    steps=900,
    batch_size=16,
    lr=2e-3,
    min_lr=2e-4,
    warmup_steps=20,
    weight_decay=0.0,
    eval_every=50,
    eval_batches=4,
    seed=0,
    device="cpu",
    progress=False,
    sample_prompts=(),
)
# torch threads each recipe trains on, on every machine: CPU kernels split
# their sums by thread count, so the same recipe trained on 1 and on 2 threads
# ends with weights that differ (by up to 0.19 after the small model's 600
# steps, 0.13 for the SFT model), and the chapters assert on one model. These
# are the counts the models the chapters were executed with were trained on,
# and each enters its recipe's cache name.
SMALL_THREADS = 2
SFT_THREADS = 1
SFT_PROBES = 6  # validation questions (one of each type) answered at each eval
SFT_STORY_ROWS = 4  # rehearsal: plain story windows per batch (labkit.sft)
SFT_STORY_LEN = 128  # tokens per window, from the small model's own stories


def models_dir() -> Path:
    """$LABKIT_CACHE/models, else ~/.cache/labkit/models (corpora.cache_root)."""
    return cache_root() / "models"


def recipe_name() -> str:
    """small-stories-<hash of the recipe>: a new recipe gets a new folder.

    The model enters the hash with its sizes written out (``resolved()``), so
    the same model spelled with or without its derived sizes is one recipe.
    """
    recipe = {
        "model": dataclasses.asdict(SMALL_MODEL.resolved()),
        "train": dataclasses.asdict(SMALL_TRAIN),
        "corpus": [CORPUS, CORPUS_BYTES],
        "threads": SMALL_THREADS,  # the weights depend on it (see above)
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    return f"small-stories-{digest.hexdigest()[:10]}"


def train_small_model(folder: Path, progress: bool = False) -> None:
    """Run the recipe, writing model.safetensors, config.json and a run folder."""
    from safetensors.torch import save_model

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
    # config.json first: model.safetensors, written last, marks the folder done
    config = dataclasses.asdict(SMALL_MODEL.resolved())
    write_atomic(folder / "config.json", (json.dumps(config, indent=1) + "\n").encode())
    with atomic_path(folder / "model.safetensors") as tmp:
        save_model(model, str(tmp))


def _make_once(folder: Path, make, threads: int) -> None:
    """``make(folder)`` unless ``folder/model.safetensors`` is there, by one
    process at a time.

    A folder without model.safetensors (a run that was stopped) is made
    afresh. Two processes that need the model at once (two notebooks opened
    together, two test workers) would otherwise both train it and delete each
    other's files: the second waits on a lock beside the folder, then finds
    the model made. The lock (``flock``) is released when its file closes,
    also when the process dies. ``make`` runs on ``threads`` torch threads
    whatever the machine or OMP_NUM_THREADS say (see SMALL_THREADS).
    """
    weights = folder / "model.safetensors"
    if weights.exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not weights.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a stopped run left
            folder.mkdir()
            with torch_threads(threads):
                make(folder)


def load_small_model(progress: bool = False) -> tuple[GPT, Tokenizer]:
    """The recipe's trained model (in eval mode) and its byte-level tokenizer.

    Trains and caches it on first use; see the module docstring. A folder
    without model.safetensors (a run that was stopped) is trained afresh.
    """
    folder = models_dir() / recipe_name()
    _make_once(folder, lambda f: train_small_model(f, progress), SMALL_THREADS)
    model = GPT(SMALL_MODEL)  # the folder's name is the hash of this config
    return _load_weights(model, folder), Tokenizer()


def _load_weights(model: GPT, folder: Path) -> GPT:
    from safetensors.torch import load_model

    weights = folder / "model.safetensors"
    try:
        load_model(model, str(weights))
    except Exception as e:  # safetensors' and torch's errors for a bad file
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(
            f"{weights} cannot be loaded ({first}); delete {folder} and the "
            f"next call trains it again"
        ) from None
    return model.eval()


def sft_recipe_name() -> str:
    """sft-stories-<hash>: of the base recipe, the data and the training."""
    recipe = {
        "base": recipe_name(),
        "splits": SFT_SPLITS,
        "seed": SFT_SEED,
        "templates": instruct.TEMPLATES,
        "max_chars": instruct.MAX_CHARS,
        "data_version": instruct.DATA_VERSION,
        "train": dataclasses.asdict(SFT_TRAIN),
        "probes": SFT_PROBES,
        "stories": [SFT_STORY_ROWS, SFT_STORY_LEN],
        "threads": SFT_THREADS,
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    return f"sft-stories-{digest.hexdigest()[:10]}"


def train_sft_model(folder: Path, progress: bool = False) -> None:
    """Fine-tune the small model on the story questions; write
    model.safetensors, config.json, history.json and a run folder."""
    from safetensors.torch import save_model

    from labkit.chat import add_chat_tokens, chat_tokenizer
    from labkit.data import prepare_tokens
    from labkit.evals import answer_questions, teacher_forced_exact
    from labkit.sft import SFTData
    from labkit.train.loop import train

    base, _ = load_small_model(progress=progress)
    tokenizer = chat_tokenizer()
    text = load_text(CORPUS)  # the base model's own stories, for rehearsal
    cut = text.find("\n", CORPUS_BYTES)
    stories = prepare_tokens(text[: cut + 1], tokenizer, folder / "stories", seed=0)
    splits = instruct.make_splits(SFT_SPLITS, seed=SFT_SEED)
    val, probes = splits["val"], splits["val"][:SFT_PROBES]
    torch.manual_seed(SFT_TRAIN.seed)
    model = add_chat_tokens(base, tokenizer.vocab_size)
    history = []

    def on_eval(step: int, record: dict) -> None:
        right = teacher_forced_exact(model, tokenizer, val)
        history.append({
            "step": step,
            "val_loss": round(record["val_loss"], 4),
            "val_exact": round(sum(right) / len(right), 4),
            "answers": answer_questions(model, tokenizer, probes),
        })  # fmt: skip

    cfg = dataclasses.replace(
        SFT_TRAIN, out_dir=str(folder / "run"), progress=progress, keep_last=1
    )
    data = SFTData(splits, tokenizer, model.cfg.context_len, stories=stories,
                   story_rows=SFT_STORY_ROWS, story_len=SFT_STORY_LEN)  # fmt: skip
    train(model, data, cfg, on_eval)
    config = dataclasses.asdict(model.cfg.resolved())
    write_atomic(folder / "config.json", (json.dumps(config, indent=1) + "\n").encode())
    evals = json.dumps({"evals": history}) + "\n"
    write_atomic(folder / "history.json", evals.encode())
    with atomic_path(folder / "model.safetensors") as tmp:
        save_model(model, str(tmp))


def _sft_folder(progress: bool) -> Path:
    folder = models_dir() / sft_recipe_name()
    _make_once(folder, lambda f: train_sft_model(f, progress), SFT_THREADS)
    return folder


def load_sft_model(progress: bool = False) -> tuple[GPT, Tokenizer]:
    """The fine-tuned chat model (eval mode) and its chat tokenizer.

    Trains and caches it on first use (the small model too, if needed).
    """
    from labkit.chat import chat_tokenizer

    folder = _sft_folder(progress)
    tokenizer = chat_tokenizer()
    cfg = dataclasses.replace(SMALL_MODEL, vocab_size=tokenizer.vocab_size)
    return _load_weights(GPT(cfg), folder), tokenizer


def sft_history(progress: bool = False) -> list[dict]:
    """The SFT run's evaluations, in order: step, val_loss (nats per answer
    token), val_exact (greedy exact match on the SFT_SPLITS["val"]
    questions) and the answers to the first SFT_PROBES of them."""
    from labkit.train.files import read_json

    path = _sft_folder(progress) / "history.json"
    return read_json(path, "an SFT history")["evals"]
