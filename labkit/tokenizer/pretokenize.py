"""Pre-tokenisation: cut text into the pieces that BPE merges inside.

Before any merge is learned, text is cut in two stages:

1. on special tokens (``<|endoftext|>``): each occurrence becomes its own piece,
   never merged with its neighbours; the longest special token wins where two
   overlap (``<|a|><|a|>`` before ``<|a|>``);
2. each stretch between special tokens is cut by a regular expression into
   pre-tokens (words with their leading space, numbers, punctuation runs,
   whitespace). No merge ever crosses a pre-token boundary, so " dog" and "dog."
   never fuse into one token across the space or the full stop.

``GPT2_PATTERN`` is the expression of Radford et al. (2019), GPT-2;
``GPT4_PATTERN`` is the one tiktoken uses for cl100k_base (numbers cut in groups
of at most three digits, case-insensitive contractions, newlines kept apart).

``safe_chunks`` lets a trainer or an encoder stream a large file: it cuts the
stream only at places where the whole-text pre-tokenisation has a boundary
anyway, so streaming gives exactly the pre-tokens of the whole text.

Built in: notebooks/02_byte_pair_encoding.ipynb.
Leaves out on purpose: Unicode normalisation (text is taken as it is).
"""

import re
from collections.abc import Iterable, Iterator

import regex

GPT2_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}"""
    r"""| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN}

# A newline between two non-space characters: both patterns put a pre-token
# boundary right after it, and it never lies inside a special token that has
# no newline of its own.
_SAFE_CUT = regex.compile(r"(?<=\S\n)(?=\S)")


def resolve_pattern(pattern: str) -> str:
    """The regular expression for "gpt2", "gpt4", or a pattern given as is."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str, got {type(pattern).__name__}")
    return PATTERNS.get(pattern, pattern)


def check_text(text: object, what: str = "text") -> str:
    """Return ``text`` if it is a str that UTF-8 can encode, else raise.

    Raises TypeError for a non-str and ValueError naming the index of a lone
    surrogate (U+D800..U+DFFF on its own), which has no UTF-8 encoding.
    """
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        char = text[err.start]
        raise ValueError(
            f"{what} contains a lone surrogate U+{ord(char):04X} at index "
            f"{err.start}; it has no UTF-8 encoding"
        ) from None
    return text


def check_special_tokens(special_tokens: Iterable[str]) -> list[str]:
    """Special tokens as a list without repeats; each must be a non-empty str."""
    if isinstance(special_tokens, str):
        raise TypeError(
            "special_tokens must be a list of str, got one str "
            f"{special_tokens!r}; write [{special_tokens!r}]"
        )
    out: dict[str, None] = {}  # keeps the order, drops repeats
    for token in special_tokens:
        check_text(token, "special token")
        if not token:
            raise ValueError("a special token must not be the empty string")
        out[token] = None
    return list(out)


def special_regex(special_tokens: Iterable[str]) -> "re.Pattern | None":
    """One expression matching any special token, the longest first (None if none).

    The tokens are written as a trie (``_trie_pattern``): "<|a|>" and "<|b|>"
    share the branch for "<|", so at each place of the text the engine
    follows one branch per character instead of trying every token in turn,
    and 20,000 special tokens cost little more than one. The expression is
    literal text only, so the standard library's ``re`` runs it (faster here
    than ``regex``). Tokens nested hundreds deep ("a", "aa", "aaa", ...) are
    past what ``re`` can nest; they get the plain alternation, longest first.
    """
    tokens = set(special_tokens)
    if not tokens:
        return None
    try:
        return re.compile(_trie_pattern(tokens))
    except RecursionError:
        longest_first = sorted(tokens, key=lambda t: (-len(t), t))
        return re.compile("|".join(re.escape(t) for t in longest_first))


def _trie_pattern(tokens: set[str]) -> str:
    """A regular expression for ``tokens`` that prefers the longest match.

    Each node of the trie becomes ``(?:branch|branch)``, followed by ``?``
    where a token may also end there: the engine tries to go on first, so the
    longest token wins. Runs of nodes with one child are written as a literal.
    Example: {"ab", "abc", "b"} -> (?:ab(?:c)?|b)
    """
    trie: dict = {}
    for token in tokens:
        node = trie
        for ch in token:
            node = node.setdefault(ch, {})
        node[""] = True  # a token ends here
    return _node_pattern(trie)


def _node_pattern(node: dict) -> str:
    branches = []
    for ch in sorted(k for k in node if k):
        literal, child = [ch], node[ch]
        while len(child) == 1 and "" not in child:  # a chain: no choice to make
            ((ch, child),) = child.items()
            literal.append(ch)
        branches.append(re.escape("".join(literal)) + _node_pattern(child))
    if not branches:
        return ""
    group = "(?:" + "|".join(branches) + ")"
    return group + "?" if "" in node else group


def split_special(
    text: str, special: "re.Pattern | None"
) -> Iterator[tuple[str, bool]]:
    """Yield (piece, is_special) in order; empty ordinary pieces are skipped.

    Example: split_special("a<|endoftext|>b", special_regex(["<|endoftext|>"]))
    -> ("a", False), ("<|endoftext|>", True), ("b", False)
    """
    if special is None:
        if text:
            yield text, False
        return
    start = 0
    for match in special.finditer(text):
        if match.start() > start:
            yield text[start : match.start()], False
        yield match.group(), True
        start = match.end()
    if start < len(text):
        yield text[start:], False


def pretokenize(
    text: str, special_tokens: Iterable[str] = (), pattern: str = "gpt2"
) -> list[str]:
    """All pieces of ``text``: special tokens whole, the rest cut by ``pattern``.

    Example: pretokenize("Hi there!") -> ["Hi", " there", "!"]
    """
    check_text(text)
    compiled = regex.compile(resolve_pattern(pattern))
    out: list[str] = []
    special = special_regex(check_special_tokens(special_tokens))
    for piece, is_special in split_special(text, special):
        if is_special:
            out.append(piece)
        else:
            out.extend(compiled.findall(piece))
    return out


def safe_chunks(
    pieces: Iterable[str], special_tokens: Iterable[str] = (), min_chars: int = 1 << 20
) -> Iterator[str]:
    """Regroup a stream of text into chunks that pre-tokenise like the whole.

    A chunk ends right after a special token or after a newline that sits
    between two non-space characters: with the GPT-2 and GPT-4 patterns no
    pre-token crosses either place, so pre-tokenising chunk by chunk gives the
    pre-tokens of the concatenated text. Chunks hold about ``min_chars``
    characters; a stretch with no safe place (one enormous line) is held whole,
    so memory is bounded by ``min_chars`` plus the longest such stretch.
    """
    specials = list(special_tokens)
    special = special_regex(specials)
    longest = max((len(t) for t in specials), default=0)
    newline_cuts = not any("\n" in t for t in specials)
    buffer = ""
    for piece in pieces:
        buffer += piece
        if len(buffer) < min_chars:
            continue
        cut = _last_safe_cut(buffer, special, longest, newline_cuts)
        if cut > 0:
            yield buffer[:cut]
            buffer = buffer[cut:]
    if buffer:
        yield buffer


def _last_safe_cut(
    buffer: str, special: "re.Pattern | None", longest: int, newline_cuts: bool
) -> int:
    """The last index at which ``buffer`` may be cut (0: nowhere yet)."""
    cut = 0
    if newline_cuts:
        # search a window at the end first; most buffers have many newlines
        for window in (1 << 16, len(buffer)):
            start = max(0, len(buffer) - window)
            starts = [m.start() for m in _SAFE_CUT.finditer(buffer, start)]
            if starts:
                cut = starts[-1]
                break
    if special is not None:
        # a special token may start in the tail and be completed by the next
        # piece, so only an occurrence followed by more text is a safe cut
        for match in special.finditer(buffer):
            if match.end() + longest <= len(buffer):
                cut = max(cut, match.end())
    return cut
