"""BPE, WordPiece and Unigram side by side, trained on the same text.

Adds to show.py a comparison with the other two subword algorithms in wide
use, trained with HF ``tokenizers`` (the reference implementations):

* BPE (byte-level, GPT-2 pre-tokenisation): merges the most frequent pair;
* WordPiece (BERT): HF's WordPieceTrainer is a BPE trainer with the "##"
  prefix for pieces inside a word (tokenizers/src/models/wordpiece/
  trainer.rs): it merges the most *frequent* pair too. The score rule usually
  given for WordPiece, count(ab) / (count(a) count(b)) (after Schuster &
  Nakajima, 2012), is not what it runs; labkit.tokenizer.wordpiece has both.
  Encoding is greedy longest match; whitespace is dropped (BERT's
  pre-tokenizer splits on it), and a word it cannot spell becomes [UNK];
* Unigram (Kudo 2018, SentencePiece): starts from many candidate pieces and
  prunes those whose removal costs the corpus likelihood least; encodes with
  the most probable segmentation; a space is written "▁", and every space
  starts a new piece (so each space of an indentation is a token of its own).
  labkit.tokenizer.unigram writes the training out.

``HFTokenizer`` wraps each in labkit's encode / decode so the helpers of
show.py apply to all of them; ``shown_pieces`` writes any tokenizer's tokens
so that none of them is invisible. ``compare`` returns one row per tokenizer.

Built in: notebooks/03_tokenizers_compared.ipynb.
"""

from dataclasses import dataclass

from labkit.tokenizer.gpt2 import bytes_to_unicode
from labkit.tokenizer.show import compression

KINDS = ("bpe", "wordpiece", "unigram")


class HFTokenizer:
    """An HF ``tokenizers.Tokenizer`` with labkit's encode / decode API."""

    def __init__(self, name: str, hf):
        self.name = name
        self.hf = hf

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=False)

    def pieces(self, text: str) -> list[str]:
        """The token strings as the model stores them ("Ġthe", "##ing", "▁the")."""
        return self.hf.encode(text, add_special_tokens=False).tokens

    def __repr__(self) -> str:
        return f"HFTokenizer({self.name!r}, vocab_size={self.vocab_size})"


def train_hf(text: str, kind: str, vocab_size: int) -> HFTokenizer:
    """Train an HF ``tokenizers`` model of ``kind`` ("bpe", "wordpiece",
    "unigram") on ``text``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "bpe":
        hf = Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif kind == "wordpiece":
        hf = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        hf.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False
        )
    elif kind == "unigram":
        hf = Tokenizer(models.Unigram())
        hf.pre_tokenizer = pre_tokenizers.Metaspace()
        hf.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=["<unk>"],
            unk_token="<unk>",
            show_progress=False,
        )
    else:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    hf.train_from_iterator([text], trainer=trainer)
    return HFTokenizer(kind, hf)


def _shown_bytes(token: bytes) -> str:
    """A token's bytes as text; a byte that is part of a character cut by the
    token's edge shows as <hex> ("<e6>")."""
    out, i = [], 0
    while i < len(token):
        for n in (1, 2, 3, 4):
            try:
                out.append(token[i : i + n].decode("utf-8"))
            except UnicodeDecodeError:
                continue
            i += n
            break
        else:
            out.append(f"<{token[i]:02x}>")
            i += 1
    return "".join(out)


def _byte_level(tokenizer: HFTokenizer) -> bool:
    from tokenizers import decoders

    return isinstance(tokenizer.hf.decoder, decoders.ByteLevel)


def shown_pieces(tokenizer, text: str) -> list[str]:
    """Each token of ``text`` written so that it can be seen.

    HF models show each id's stored string ("##ing", "▁the", a lone "▁",
    and "<unk>" or "[UNK]" where HF's own token list would show the text it
    lost); labkit's WordPiece and Unigram their pieces; byte-level BPE (ours
    or HF's) each token's bytes. Then a space is "·", a newline "↵", a tab "⇥".
    Example: shown_pieces(byte_tokenizer, "é") -> ["<c3>", "<a9>"]
    """
    if isinstance(tokenizer, HFTokenizer):
        pieces = [tokenizer.hf.id_to_token(i) for i in tokenizer.encode(text)]
        if _byte_level(tokenizer):  # "Ġthe" -> the token's bytes, b" the"
            table = {ch: b for b, ch in bytes_to_unicode().items()}
            pieces = [_shown_bytes(bytes(table[ch] for ch in p)) for p in pieces]
    elif hasattr(tokenizer, "pieces"):
        pieces = tokenizer.pieces(text)
    else:
        pieces = [_shown_bytes(tokenizer.vocab[i]) for i in tokenizer.encode(text)]
    table = str.maketrans({" ": "·", "\n": "↵", "\t": "⇥"})
    return [piece.translate(table) for piece in pieces]


@dataclass(frozen=True)
class Row:
    name: str
    vocab_size: int
    n_tokens: int  # tokens of the evaluation text
    bytes_per_token: float
    roundtrip: bool  # decode(encode(text)) == text
    sample: tuple[str, ...]  # the sample's tokens, decoded one by one


def compare(
    train_text: str,
    vocab_size: int,
    eval_text: str | None = None,
    sample: str = "Tokenizers compared: 12,345 naïve 🙂",
    ours=None,
) -> list[Row]:
    """One Row per tokenizer: ours (if given), then HF BPE, WordPiece, Unigram.

    Each HF model is trained on ``train_text`` to ``vocab_size``; all are
    measured on ``eval_text`` (default: the training text).
    """
    eval_text = train_text if eval_text is None else eval_text
    tokenizers = [("labkit bpe", ours)] if ours is not None else []
    tokenizers += [(k, train_hf(train_text, k, vocab_size)) for k in KINDS]
    rows = []
    for name, tok in tokenizers:
        ids = tok.encode(eval_text)
        rows.append(
            Row(
                name=name,
                vocab_size=tok.vocab_size,
                n_tokens=len(ids),
                bytes_per_token=compression(tok, eval_text),
                roundtrip=tok.decode(ids) == eval_text,
                sample=tuple(tok.decode([i]) for i in tok.encode(sample)),
            )
        )
    return rows
