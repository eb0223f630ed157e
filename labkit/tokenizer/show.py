"""Looking at a tokenizer: coloured tokens, compression, coverage, cost.

Adds to tokenizer.py the measurements the chapters (and users choosing a
vocabulary size) need; any object with ``encode`` and ``decode`` works.

* ``render_html``: each token of a text on its own background colour, as an
  HTML string (``TokenHTML`` shows itself in JupyterLab and in the book);
* ``compression``: UTF-8 bytes per token (higher: fewer tokens for the text);
* ``coverage``: how many distinct words are a single token, overall and by
  word-frequency band, and the mean number of tokens per word in each band;
* ``cost``: tokens of a text and what they cost at a price per 1,000 tokens.

Built in: notebooks/02_byte_pair_encoding.ipynb, 03_tokenizers_compared.ipynb.
"""

import html
from collections import Counter
from dataclasses import dataclass

import regex

# twelve light background colours, readable with black text
PALETTE = (
    "#fde2e4 #e2ece9 #bee1e6 #fad2e1 #dfe7fd #cddafd "
    "#fff1e6 #e9f5db #f0efeb #ffd6a5 #caffbf #bdb2ff"
).split()
_WORD = regex.compile(r"\p{L}+(?:'\p{L}+)?")


def token_strings(tokenizer, ids: list[int]) -> list[str]:
    """Each id decoded alone (a split UTF-8 character shows as U+FFFD)."""
    return [tokenizer.decode([i]) for i in ids]


class TokenHTML(str):
    """An HTML string that Jupyter displays as HTML rather than as text."""

    def _repr_html_(self) -> str:
        return str(self)


def render_html(tokenizer, text: str, show_ids: bool = False) -> TokenHTML:
    """``text`` with each token on a coloured background (hover: its id).

    Spaces show as "·" and newlines as "↵" followed by a line break, so
    whitespace tokens are visible.
    """
    ids = tokenizer.encode(text)
    spans = []
    for k, (i, piece) in enumerate(
        zip(ids, token_strings(tokenizer, ids), strict=True)
    ):
        shown = html.escape(piece).replace(" ", "·").replace("\n", "↵<br>")
        label = f"<sub>{i}</sub>" if show_ids else ""
        spans.append(
            f'<span title="{i}" style="background:{PALETTE[k % len(PALETTE)]};'
            f'color:#000;border-radius:3px;padding:0 1px;margin:0 1px">'
            f"{shown}{label}</span>"
        )
    body = "".join(spans)
    return TokenHTML(
        f'<div style="font-family:monospace;line-height:1.9;white-space:normal">'
        f"{body}</div><div><small>{len(ids)} tokens, "
        f"{len(text.encode('utf-8'))} bytes</small></div>"
    )


def compression(tokenizer, text: str) -> float:
    """UTF-8 bytes per token of ``text`` (1.0 for the plain byte tokenizer)."""
    n_tokens = len(tokenizer.encode(text))
    if n_tokens == 0:
        raise ValueError("compression of an empty text is undefined (0 tokens)")
    return len(text.encode("utf-8")) / n_tokens


@dataclass(frozen=True)
class Coverage:
    """Word coverage of a tokenizer on a text.

    ``bands`` rows: (band name, distinct words, fraction single-token, mean
    tokens per word), bands by word frequency rank: the top 100 words, ranks
    100-1000, 1000-10000, and the rest.
    """

    n_words: int  # distinct words
    single_token: float  # fraction of distinct words that are one token
    single_token_weighted: float  # the same, weighted by occurrences
    tokens_per_word: float  # mean over occurrences
    bands: tuple[tuple[str, int, float, float], ...]


def coverage(tokenizer, text: str) -> Coverage:
    """How well the vocabulary covers the words of ``text`` (with a leading space).

    A word counts as it appears inside running text, after a space (" the"),
    which is how a GPT-style vocabulary stores most words.
    """
    words = Counter(_WORD.findall(text))
    if not words:
        raise ValueError("coverage needs a text with at least one word")
    ranked = words.most_common()
    lengths = {w: len(tokenizer.encode(" " + w)) for w, _ in ranked}
    total = sum(words.values())
    bands = []
    edges = [(0, 100, "top 100"), (100, 1000, "100-1k"), (1000, 10000, "1k-10k")]
    edges.append((10000, len(ranked), "10k+"))
    for lo, hi, name in edges:
        band = ranked[lo:hi]
        if not band:
            continue
        single = sum(lengths[w] == 1 for w, _ in band) / len(band)
        mean = sum(lengths[w] for w, _ in band) / len(band)
        bands.append((name, len(band), single, mean))
    return Coverage(
        n_words=len(ranked),
        single_token=sum(n == 1 for n in lengths.values()) / len(ranked),
        single_token_weighted=sum(c for w, c in ranked if lengths[w] == 1) / total,
        tokens_per_word=sum(lengths[w] * c for w, c in ranked) / total,
        bands=tuple(bands),
    )


@dataclass(frozen=True)
class Cost:
    n_tokens: int
    price_per_1k: float
    total: float  # n_tokens / 1000 * price_per_1k


def cost(tokenizer, text: str, price_per_1k: float) -> Cost:
    """What sending ``text`` costs at ``price_per_1k`` per 1,000 tokens."""
    if price_per_1k < 0:
        raise ValueError(f"price_per_1k={price_per_1k} must not be negative")
    n_tokens = len(tokenizer.encode(text))
    return Cost(n_tokens, price_per_1k, n_tokens / 1000 * price_per_1k)
