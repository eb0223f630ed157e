"""labkit.tokenizer: byte-level BPE, layered like minbpe (read in this order).

- pretokenize.py: special-token splitting and the GPT-2 / GPT-4 regexes;
- bpe.py: ``train_bpe``, the teaching trainer (count pairs, merge, repeat);
- merging.py: ``merge``, the step training and encoding share, and its
  linked-list sibling for long pre-tokens;
- tokenizer.py: ``Tokenizer``, encode / decode / save / load;
- files.py: reading tokenizer files, checked whole (``TokenizerFileError``);
- fast.py: ``train_bpe_fast``, the same merges with incremental counts,
  streaming a corpus from a path;
- gpt2.py: GPT-2's published files (byte-to-unicode quirk) and a checked
  downloader;
- chars.py: ``CharTokenizer``, the character-level baseline;
- show.py: coloured tokens, compression, coverage, cost;
- compare.py: HF ``tokenizers`` BPE / WordPiece / Unigram side by side.
"""

import warnings

from labkit.tokenizer.bpe import train_bpe
from labkit.tokenizer.chars import CharTokenizer
from labkit.tokenizer.fast import train_bpe_fast
from labkit.tokenizer.files import TokenizerFileError, tokenizer_format
from labkit.tokenizer.gpt2 import (
    download_gpt2_files,
    find_gpt2_files,
    load_gpt2_files,
)
from labkit.tokenizer.pretokenize import GPT2_PATTERN, GPT4_PATTERN, pretokenize
from labkit.tokenizer.tokenizer import Tokenizer


def _from_gpt2_files(cls, vocab_json, merges_txt) -> Tokenizer:
    """Deprecated: use ``labkit.tokenizer.load_gpt2_files``."""
    warnings.warn(
        "Tokenizer.from_gpt2_files is deprecated; use "
        "labkit.tokenizer.load_gpt2_files(vocab_json, merges_txt)",
        DeprecationWarning,
        stacklevel=2,
    )
    return load_gpt2_files(vocab_json, merges_txt)


# The old name, kept for one release. It is attached here, where both modules
# are loaded, because tokenizer.py must not import gpt2.py (which imports it).
Tokenizer.from_gpt2_files = classmethod(_from_gpt2_files)

__all__ = [
    "GPT2_PATTERN",
    "GPT4_PATTERN",
    "CharTokenizer",
    "Tokenizer",
    "TokenizerFileError",
    "download_gpt2_files",
    "find_gpt2_files",
    "load_gpt2_files",
    "pretokenize",
    "tokenizer_format",
    "train_bpe",
    "train_bpe_fast",
]
