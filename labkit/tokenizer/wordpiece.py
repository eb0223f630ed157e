"""WordPiece: greedy longest-match encoding, and a trainer with either merge rule.

Adds to bpe.py's byte-level merges the subword scheme of BERT (Devlin et al.,
2019), which works on characters, not bytes:

* pre-tokens, ``bert_words``: split on whitespace, and every punctuation
  character or ASCII symbol is a word of its own, as HF's BertPreTokenizer
  does. Whitespace is dropped here, so decoding cannot bring it back;
* units: a word's first character as itself, every later character with the
  prefix "##" ("cat" -> "c", "##a", "##t");
* encoding, ``encode_word``: the longest vocabulary entry that starts the
  word, then the longest "##" entry that continues it, and so on; when none
  fits, the whole word is "[UNK]" (no backtracking, as in BERT and HF);
* training, ``train_wordpiece``: start from every unit of the text and merge
  a pair again and again until ``vocab_size`` entries. Two rules:
  ``rule="score"`` merges the pair with the highest
  count(ab) / (count(a) count(b)), the rule usually given for WordPiece (the
  logarithm of that ratio, plus log N, is to first order the log-likelihood
  gained per merged occurrence under a unigram model of the units: the idea
  of Schuster & Nakajima, 2012); ``rule="count"`` merges the most frequent
  pair, which is what HF ``tokenizers``' WordPieceTrainer runs (a BpeTrainer
  with the "##" prefix, tokenizers/src/models/wordpiece/trainer.rs).

Merging "a" with "##b" gives "ab"; a merge whose result is already in the
vocabulary still merges but adds nothing (HF does the same). Ties go to the
higher count, then to the pair whose tokens entered the vocabulary first (as
in HF, whose "##" characters, though, enter in hash-map order, so its ties
fall differently from run to run).

Built in: notebooks/03_tokenizers_compared.ipynb.
Leaves out on purpose: BERT's normaliser (lower-casing, accent stripping,
spaces around CJK characters), HF's 100-character word limit, minimum
frequencies. Pair counts are updated only for the words a merge changes, but
the best pair is still found by a scan of all pairs at every step.
"""

import itertools
from collections import Counter

import regex

UNK = "[UNK]"
PREFIX = "##"
RULES = ("score", "count")
_PUNCT = r"[\p{P}!-/:-@\[-`{-~]"  # Unicode punctuation and the ASCII symbols
BERT_WORD = regex.compile(rf"[^\s\p{{P}}!-/:-@\[-`{{-~]+|{_PUNCT}")

Split = tuple[str, ...]  # one word as its current units
Pair = tuple[str, str]


def bert_words(text: str) -> list[str]:
    """BERT's pre-tokens: runs of other characters, and each symbol alone.

    Example: bert_words("f(x) = 2") -> ["f", "(", "x", ")", "=", "2"]
    """
    return BERT_WORD.findall(text)


def units(word: str) -> Split:
    """A word as its first character and "##" + each later character."""
    return (word[0], *(PREFIX + ch for ch in word[1:]))


def join(a: str, b: str) -> str:
    """The token a merge of ``a`` and ``b`` makes: "c" + "##at" -> "cat"."""
    return a + b.removeprefix(PREFIX)


def unit_and_pair_counts(splits: dict[Split, int]) -> tuple[Counter, Counter]:
    """(count of each unit, count of each adjacent pair), weighted by the
    number of times each word occurs."""
    unit_counts, pair_counts = Counter(), Counter()
    for split, n in splits.items():
        for unit in split:
            unit_counts[unit] += n
        for pair in itertools.pairwise(split):
            pair_counts[pair] += n
    return unit_counts, pair_counts


def best_pair(
    splits: dict[Split, int], rule: str = "score", order: dict[str, int] | None = None
) -> Pair | None:
    """The pair ``rule`` merges next, or None when no word has two units.

    ``splits`` maps each distinct word, as its current units, to its count.
    "score": highest count(ab) / (count(a) count(b)); "count": highest
    count(ab). Ties: the higher count, then the pair whose units come first in
    ``order`` (token -> id; default: the pair that sorts first as strings).
    """
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not one of {RULES}")
    unit_counts, pair_counts = unit_and_pair_counts(splits)
    if not pair_counts:
        return None

    def key(pair: Pair) -> tuple:  # smallest key: best score, then count
        n = pair_counts[pair]
        score = n / (unit_counts[pair[0]] * unit_counts[pair[1]])
        rank = pair if order is None else (order[pair[0]], order[pair[1]])
        return (-(score if rule == "score" else n), -n, rank)

    return min(pair_counts, key=key)


def merge_pair(split: Split, pair: Pair) -> Split:
    """``split`` with every occurrence of ``pair``, left to right, merged."""
    out, i = [], 0
    while i < len(split):
        if i + 1 < len(split) and (split[i], split[i + 1]) == pair:
            out.append(join(*pair))
            i += 2
        else:
            out.append(split[i])
            i += 1
    return tuple(out)


def encode_word(word: str, vocab, unk: str = UNK) -> list[str]:
    """Greedy longest match: ``word`` as vocabulary entries, or [``unk``].

    Example: with {"un", "##aff", "##able"}: "unaffable" -> those three.
    """
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):  # longest first
            piece = word[start:end] if start == 0 else PREFIX + word[start:end]
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:
            return [unk]  # nothing fits here: the whole word is unknown
    return pieces


class WordPiece:
    """A WordPiece vocabulary (ids in list order) with encode / decode.

    Shapes: encode(str) -> list[int], one id per piece.
    """

    def __init__(self, vocab: list[str], unk: str = UNK):
        if unk not in vocab:
            raise ValueError(f"the unknown token {unk!r} is not in the vocabulary")
        if len(set(vocab)) != len(vocab):
            twice = next(t for k, t in enumerate(vocab) if t in vocab[:k])
            raise ValueError(f"vocab lists {twice!r} twice")
        self.vocab, self.unk = list(vocab), unk
        self.ids = {token: i for i, token in enumerate(vocab)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"WordPiece(vocab_size={self.vocab_size})"

    def pieces(self, text: str) -> list[str]:
        """The pieces of ``text``: each BERT word by greedy longest match."""
        return [p for w in bert_words(text) for p in encode_word(w, self.ids, self.unk)]

    def encode(self, text: str) -> list[int]:
        return [self.ids[p] for p in self.pieces(text)]

    def decode(self, ids: list[int]) -> str:
        """Pieces joined: "##" pieces to the one before, others by a space."""
        text = " ".join(self.vocab[i] for i in ids)
        return text.replace(" " + PREFIX, "")


def train_wordpiece(
    text: str, vocab_size: int, rule: str = "score", unk: str = UNK
) -> WordPiece:
    """Learn a WordPiece vocabulary of ``vocab_size`` entries from ``text``.

    The vocabulary starts with ``unk``, every character of the text (sorted)
    and the "##" form of every character that occurs after a word's first
    (sorted), then grows by one entry per merge (``best_pair`` under
    ``rule``, ties to the pair of earlier entries, as in HF) until it has
    ``vocab_size`` entries or no pair is left.
    """
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not one of {RULES}")
    words = Counter(bert_words(text))
    if not words:
        raise ValueError("train_wordpiece needs a text with at least one word")
    splits = Counter({units(w): n for w, n in words.items()})
    vocab = [unk, *sorted({ch for w in words for ch in w})]
    vocab += sorted({u for s in splits for u in s[1:]} - set(vocab))
    if vocab_size < len(vocab):
        raise ValueError(
            f"vocab_size={vocab_size} is below the {len(vocab)} characters and "
            f"'##' forms of this text (with {unk!r})"
        )
    order = {token: i for i, token in enumerate(vocab)}
    counts = _PairCounts(splits)
    while len(vocab) < vocab_size:
        pair = counts.best(rule, order)
        if pair is None:
            break
        if join(*pair) not in order:
            order[join(*pair)] = len(vocab)
            vocab.append(join(*pair))
        counts.merge(pair)
    return WordPiece(vocab, unk)


class _PairCounts:
    """Unit and pair counts of a set of words, kept up to date merge by merge.

    ``best`` picks what ``best_pair`` picks on the current splits; ``merge``
    recounts only the words that hold the pair, so training costs about the
    number of merges times the number of distinct pairs, not times the text.
    """

    def __init__(self, splits: dict[Split, int]):
        self.splits = list(splits)
        self.weights = [splits[s] for s in self.splits]
        self.units, self.pairs = Counter(), Counter()
        self.where: dict[Pair, set[int]] = {}
        for k in range(len(self.splits)):
            self._add(k, +1)

    def _add(self, k: int, sign: int) -> None:
        split, n = self.splits[k], sign * self.weights[k]
        for unit in split:
            self.units[unit] += n
        for pair in itertools.pairwise(split):
            self.pairs[pair] += n
            if sign > 0:
                self.where.setdefault(pair, set()).add(k)
            elif self.pairs[pair] == 0:
                del self.pairs[pair]

    def best(self, rule: str, order: dict[str, int]) -> Pair | None:
        if not self.pairs:
            return None

        def key(pair: Pair) -> tuple:  # as in best_pair
            n = self.pairs[pair]
            score = n / (self.units[pair[0]] * self.units[pair[1]])
            return (
                -(score if rule == "score" else n),
                -n,
                order[pair[0]],
                order[pair[1]],
            )

        return min(self.pairs, key=key)

    def merge(self, pair: Pair) -> None:
        for k in sorted(self.where.pop(pair, ())):
            if pair not in itertools.pairwise(self.splits[k]):
                continue  # an earlier merge took this occurrence
            self._add(k, -1)
            self.splits[k] = merge_pair(self.splits[k], pair)
            self._add(k, +1)
