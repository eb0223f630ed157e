"""labkit: every piece the LLM Lab chapters build, written out and tested.

The package is a map, not a framework: one module per idea (see the table in
README.md). Notebooks import from the submodules so a reader sees where things
live (``from labkit.attention import MultiHeadAttention``); the names below are
the short list for scripts.

Importing ``labkit`` is cheap: the names are loaded on first use, so
``import labkit.viz`` does not pay for ``import torch``. A submodule is
reached the same way (``labkit.train`` is the training package, whose loop is
``labkit.train.train``; ``labkit.sweep.sweep`` runs a sweep): no short name is
also the name of a submodule, so ``labkit.X`` means one thing whatever was
imported before.
"""

from importlib import import_module
from importlib.util import find_spec

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "Tokenizer": "labkit.tokenizer",
    "train_bpe": "labkit.tokenizer",
    "train_bpe_fast": "labkit.tokenizer",
    "load_text": "labkit.corpora",
    "entropy_rate": "labkit.corpora",
    "prepare_tokens": "labkit.data",
    "TokenData": "labkit.data",
    "MultiHeadAttention": "labkit.attention",
    "KVCache": "labkit.attention",
    "GPTConfig": "labkit.model",
    "GPT": "labkit.model",
    "PRESETS": "labkit.model",
    "trace": "labkit.model",
    "count_params": "labkit.counting",
    "from_hf_gpt2": "labkit.hf",
    "from_hf_llama": "labkit.hf",
    "TrainConfig": "labkit.train",
    "generate": "labkit.sampling",
    "load_small_model": "labkit.recipes",
    "add_lora": "labkit.lora",
    "quantize_model": "labkit.qlinear",
    "InductionConfig": "labkit.induction",
    "train_induction": "labkit.induction",
    "fit_scaling_law": "labkit.scaling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    if not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:
        return import_module(f"{__name__}.{name}")  # a submodule: labkit.corpora
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
