"""Unigram (Kudo, 2018): a probability per piece, the most probable cut, and EM.

Adds to compare.py's HF Unigram a version written out, for small texts:

* pre-tokens, ``metaspace_words``: as HF's Metaspace (named after
  SentencePiece's "▁"): every space becomes "▁" and starts a new pre-token,
  and a "▁" goes in front of the text, so "a  b" -> "▁a", "▁", "▁b". (The
  SentencePiece library by default first removes leading, trailing and
  repeated spaces, its ``remove_extra_whitespaces`` option; HF's Metaspace
  keeps them, one "▁" each);
* encoding, ``viterbi``: the segmentation whose pieces' log-probabilities
  have the highest sum, by dynamic programming over the word's positions;
* training, ``train_unigram``: a seed vocabulary (``seed_pieces``: every
  character, and the substrings of 2 to ``max_len`` characters that occur at
  least twice, ranked by count x length), then rounds of EM and pruning. EM
  (``expected_counts``, ``m_step``): the expected number of times each piece
  is used, summed over every segmentation of every word weighted by its
  probability (forward-backward), becomes the piece's new probability;
  pieces expected less than half a time are dropped. Pruning (``prune``):
  drop the pieces whose removal costs the training text's likelihood least,
  keeping ``shrink`` of them, until ``vocab_size`` are left. Characters are
  never dropped, so every text of known characters can be segmented.

Where HF's UnigramTrainer (tokenizers/src/models/unigram/trainer.rs, after
SentencePiece) differs: its seed comes from a suffix array over the distinct
pre-tokens, so a substring counts once per occurrence in that list, not once
per occurrence in the text (``seed_count="distinct"`` counts that way here),
and only the suffix tree's nodes are candidates: repeated substrings followed
by at least two different characters (a word's end counting as one), a
subset of the repeated substrings taken here; its
M-step uses digamma(count) instead of log(count), a sparse prior; its pruning
loss also renormalises the probabilities of the alternatives; it keeps 10%
more pieces than asked until a last cut. Viterbi ties go here to the cut
whose last piece starts first.

Built in: notebooks/03_tokenizers_compared.ipynb.
Leaves out on purpose: the suffix array (every substring is enumerated, so
only small texts are practical), byte fallback, sampling segmentations
(subword regularisation), special tokens other than "<unk>".
"""

import math
from collections import Counter

import regex

MARK = "▁"  # U+2581, SentencePiece's space
UNK = "<unk>"
SEED_COUNTS = ("occurrences", "distinct")
LogProbs = dict[str, float]


def metaspace_words(text: str) -> list[str]:
    """Pre-tokens as HF's Metaspace: "def f():\\n  x" -> "▁def", "▁f():\\n",
    "▁", "▁x"."""
    marked = text.replace(" ", MARK)
    if marked and not marked.startswith(MARK):
        marked = MARK + marked
    return regex.findall(f"{MARK}[^{MARK}]*", marked)


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _edges(word: str, log_probs: LogProbs, max_len: int) -> list[list]:
    """ends[j]: (i, piece, log-prob) of every piece word[i:j] in the vocabulary."""
    ends = [[] for _ in range(len(word) + 1)]
    for i in range(len(word)):
        for j in range(i + 1, min(len(word), i + max_len) + 1):
            lp = log_probs.get(word[i:j])
            if lp is not None:
                ends[j].append((i, word[i:j], lp))
    return ends


def viterbi(
    word: str, log_probs: LogProbs, max_len: int = 16, skip: str | None = None
) -> list[str]:
    """The most probable segmentation of ``word`` into pieces of ``log_probs``.

    ``skip``: a piece not to use (to find a piece's best alternative).
    Raises ValueError when no segmentation exists (a character in no piece).
    Example: viterbi("▁abc", {"▁a": -1, "bc": -1, "▁ab": -3, "c": -3})
    -> ["▁a", "bc"]
    """
    n = len(word)
    best, back = [0.0] + [-math.inf] * n, [0] * (n + 1)
    for j, arriving in enumerate(_edges(word, log_probs, max_len)):
        for i, piece, lp in arriving:
            if piece != skip and best[i] + lp > best[j]:
                best[j], back[j] = best[i] + lp, i
    if n and best[n] == -math.inf:
        stuck = max(j for j in range(n + 1) if best[j] > -math.inf)
        raise ValueError(
            f"no segmentation of {word!r}: no piece starts at {word[stuck:]!r}"
        )
    pieces, j = [], n
    while j > 0:
        pieces.append(word[back[j] : j])
        j = back[j]
    return pieces[::-1]


def expected_counts(
    words: Counter, log_probs: LogProbs, max_len: int = 16
) -> tuple[Counter, float]:
    """E-step: (expected uses of each piece, log-likelihood of the words).

    For each word, alpha[j] is the log of the summed probability of every
    segmentation of word[:j], beta[i] the same for word[i:]; a piece
    word[i:j] is used with probability exp(alpha[i] + lp + beta[j] - alpha[n]).
    Both are weighted by the word's count.
    """
    expected, loglik = Counter(), 0.0
    for word, count in words.items():
        n, ends = len(word), _edges(word, log_probs, max_len)
        alpha = [0.0] + [-math.inf] * n
        for j in range(1, n + 1):
            for i, _, lp in ends[j]:
                alpha[j] = _logaddexp(alpha[j], alpha[i] + lp)
        beta = [-math.inf] * n + [0.0]
        for j in range(n, 0, -1):
            for i, _, lp in ends[j]:
                beta[i] = _logaddexp(beta[i], beta[j] + lp)
        z = alpha[n]
        if z == -math.inf:
            raise ValueError(f"no segmentation of {word!r} with these pieces")
        loglik += count * z
        for j in range(1, n + 1):
            for i, piece, lp in ends[j]:
                expected[piece] += count * math.exp(alpha[i] + lp + beta[j] - z)
    return expected, loglik


def m_step(expected: Counter, threshold: float = 0.5) -> LogProbs:
    """M-step: log-probabilities proportional to the expected counts; pieces
    expected fewer than ``threshold`` times are dropped, characters kept."""
    kept = {
        p: max(c, 1e-12) for p, c in expected.items() if c >= threshold or len(p) == 1
    }
    total = sum(kept.values())
    return {p: math.log(c / total) for p, c in kept.items()}


def seed_pieces(
    words: Counter,
    seed_size: int | None = None,
    max_len: int = 16,
    seed_count: str = "occurrences",
) -> LogProbs:
    """Every character, then the substrings (2..max_len characters) that occur
    at least twice, best count x length first, up to ``seed_size`` pieces in
    all (None: every one). ``seed_count``: count a substring per occurrence in
    the text, or per occurrence in the list of distinct pre-tokens (HF).
    """
    if seed_count not in SEED_COUNTS:
        raise ValueError(f"seed_count={seed_count!r} is not one of {SEED_COUNTS}")
    chars, subs = Counter(), Counter()
    for word, count in words.items():
        weight = count if seed_count == "occurrences" else 1
        for i, ch in enumerate(word):
            chars[ch] += count
            for j in range(i + 2, min(len(word), i + max_len) + 1):
                subs[word[i:j]] += weight
    ranked = sorted(
        (s for s, c in subs.items() if c >= 2), key=lambda s: (-subs[s] * len(s), s)
    )
    room = len(ranked) if seed_size is None else max(0, seed_size - len(chars))
    scores = dict(chars) | {s: subs[s] * len(s) for s in ranked[:room]}
    total = sum(scores.values())
    return {p: math.log(s / total) for p, s in scores.items()}


def prune(
    words: Counter, log_probs: LogProbs, keep: int, max_len: int = 16
) -> LogProbs:
    """At most ``keep`` pieces: those whose removal costs the likelihood most.

    A piece's loss: how often the best segmentations of the words use it,
    times how much less probable its best split into other pieces is
    (log P(piece) - sum of log P(alternative pieces)). Pieces that no best
    segmentation uses are dropped whatever ``keep`` is; characters stay.
    """
    used = Counter()
    for word, count in words.items():
        for piece in viterbi(word, log_probs, max_len):
            used[piece] += count
    loss = {}
    for piece, lp in log_probs.items():
        if len(piece) > 1 and used[piece] > 0:
            alternative = viterbi(piece, log_probs, max_len, skip=piece)
            loss[piece] = used[piece] * (lp - sum(log_probs[q] for q in alternative))
    chars = [p for p in log_probs if len(p) == 1]
    ranked = sorted(loss, key=lambda p: (-loss[p], p))
    kept = set(chars) | set(ranked[: max(0, keep - len(chars))])
    return {p: lp for p, lp in log_probs.items() if p in kept}


class Unigram:
    """Pieces with log-probabilities; ids: "<unk>" first, then best first.

    Shapes: encode(str) -> list[int], one id per piece; a run of characters
    in no piece becomes one "<unk>" (as HF, which fuses unknowns).
    """

    def __init__(self, log_probs: LogProbs, max_len: int = 16):
        if UNK in log_probs:
            raise ValueError(f"{UNK!r} is added by Unigram; leave it out of log_probs")
        self.log_probs, self.max_len = dict(log_probs), max_len
        self.vocab = [UNK, *sorted(log_probs, key=lambda p: (-log_probs[p], p))]
        self.ids = {piece: i for i, piece in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"Unigram(vocab_size={self.vocab_size})"

    def pieces(self, text: str) -> list[str]:
        """The pieces of ``text``: each Metaspace word by ``viterbi``."""
        out = []
        for word in metaspace_words(text):
            start = 0
            for run in _runs(word, self.log_probs):
                if run[0]:
                    out += viterbi(word[start : run[1]], self.log_probs, self.max_len)
                elif not out or out[-1] != UNK:
                    out.append(UNK)
                start = run[1]
        return out

    def encode(self, text: str) -> list[int]:
        return [self.ids[p] for p in self.pieces(text)]

    def decode(self, ids: list[int]) -> str:
        """Pieces joined, "▁" as a space, the space put in front removed."""
        text = "".join(self.vocab[i] for i in ids).replace(MARK, " ")
        return text[1:] if text.startswith(" ") else text


def _runs(word: str, log_probs: LogProbs) -> list[tuple[bool, int]]:
    """(known?, end) of each run of characters that are or are not pieces."""
    runs = []
    for k, ch in enumerate(word):
        known = ch in log_probs
        if runs and runs[-1][0] == known:
            runs[-1] = (known, k + 1)
        else:
            runs.append((known, k + 1))
    return runs


def train_unigram(
    text: str,
    vocab_size: int,
    *,
    seed_size: int | None = None,
    max_len: int = 16,
    shrink: float = 0.75,
    n_sub: int = 2,
    seed_count: str = "occurrences",
) -> Unigram:
    """Learn a Unigram vocabulary of ``vocab_size`` entries ("<unk>" included).

    Rounds of ``n_sub`` EM steps and one ``prune`` to ``shrink`` of the pieces,
    until at most ``vocab_size - 1`` pieces are left.
    """
    words = Counter(metaspace_words(text))
    n_chars = len({ch for word in words for ch in word})
    if vocab_size - 1 < n_chars:
        raise ValueError(
            f"vocab_size={vocab_size} leaves no room for the text's {n_chars} "
            f"characters and {UNK!r}"
        )
    if not 0 < shrink < 1:
        raise ValueError(f"shrink={shrink} must be between 0 and 1")
    log_probs = seed_pieces(words, seed_size, max_len, seed_count)
    while True:
        for _ in range(n_sub):
            log_probs = m_step(expected_counts(words, log_probs, max_len)[0])
        if len(log_probs) <= vocab_size - 1:
            return Unigram(log_probs, max_len)
        keep = max(vocab_size - 1, int(len(log_probs) * shrink))
        log_probs = prune(words, log_probs, keep, max_len)
