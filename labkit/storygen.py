"""A generated corpus whose true entropy rate is known exactly.

Short English-like stories come from a stochastic grammar: every rule picks one
of its options with a fixed probability. Two properties make the entropy exact:

* Unambiguous: in every rule with several options, each option begins with a
  literal string and no such literal is a prefix of another, so reading the text
  left to right finds the one option that was taken (``parse_story``). The text
  therefore determines every choice, and -log2 p(story) is the information it
  carries.
* Independent stories, one per line: the corpus is a sequence of i.i.d.
  stories, each ending in "\\n". Its entropy rate in bits per byte is
  E[-log2 p(story)] / E[bytes(story)], computed from the grammar by
  ``entropy_rate`` (a fixed point, because the list of events is recursive).

A long-range dependency: the hero's name, kind, pronouns and the lost item's
colour are chosen once near the start and repeated later (``{hero}``,
``{color}``...). A repeat carries no information, so a model that remembers the
start of the story pays nothing for it, and one with a short context pays for
a guess every time.

Randomness uses only ``random.Random(seed).random()``, whose sequence Python
guarantees across versions and machines, so a seed and size give the same bytes
everywhere. Built in: notebooks/04_counting_models.ipynb.
Leaves out on purpose: grammar learning, non-ASCII text, dialogue.
"""

import math
import random
import re

STORY_SEED = 0  # the default corpus: seed and size
STORY_BYTES = 4_000_000

_SYMBOL = re.compile(r"(<[A-Z_]+>|\{\w+\})")


def _opt(template: str, weight: int = 1, **bind: str) -> tuple:
    """One option: (weight, symbols, bindings). Symbols are literals,
    <RULE> for a rule, {var} for a variable bound earlier in the story."""
    symbols = tuple(s for s in _SYMBOL.split(template) if s)
    return (weight, symbols, bind)


def _words(*items: str) -> list[tuple]:
    """Options with Zipf-like weights: the first word is the most likely."""
    n = len(items)
    return [_opt(w, weight=n - i + n // 2) for i, w in enumerate(items)]


def _bound(var: str, *items: str) -> list[tuple]:
    return [_opt(w, weight=len(items) - i + 2, **{var: w}) for i, w in enumerate(items)]


def _hero(name: str, sex: str) -> tuple:
    he, his = ("she", "her") if sex == "f" else ("he", "his")
    return _opt(name, hero=name, he=he, He=he.title(), his=his, His=his.title())


NAMES = "Mia f Tom m Lily f Ben m Sam m Anna f Max m Lucy f Leo m Zoe f Finn m Ella f"
GRAMMAR: dict[str, list[tuple]] = {
    "STORY": [_opt("<OPEN><ADJ><KIND> named <HERO>. <HOME><LOVE><LOST><MORE>\n")],
    "OPEN": _words(
        "Once upon a time there was a ",
        "One day there was a ",
        "Long ago there lived a ",
    ),
    "ADJ": _words(
        "little ", "brave ", "happy ", "shy ", "clever ", "kind ", "tiny ", "sleepy "
    ),
    "KIND": _bound(
        "kind", "rabbit", "fox", "bear", "cat", "dog", "mouse", "duck", "frog"
    ),
    "HERO": [
        _hero(n, s)
        for n, s in zip(NAMES.split()[::2], NAMES.split()[1::2], strict=True)
    ],
    "HOME": [_opt("{He} lived in <PLACE>. ")],
    "PLACE": _words(
        "a small house by the river",
        "a hole under an old tree",
        "a cottage near the woods",
        "a nest on a green hill",
        "a warm burrow in the field",
    ),
    "LOVE": [_opt("{He} loved {his} <COLOR> <ITEM> more than anything. ")],
    "COLOR": _bound(
        "color", "red", "blue", "green", "yellow", "purple", "orange", "pink", "white"
    ),
    "ITEM": _bound(
        "item", "ball", "kite", "hat", "boat", "drum", "book", "scarf", "cup"
    ),
    "LOST": [_opt("One day, {hero} the {kind} lost {his} {color} {item}. ")],
    "MORE": [
        _opt("Then {hero} <EVENT><MORE>", weight=4),
        _opt("After that, {hero} <EVENT><MORE>", weight=3),
        _opt("At last, <END>", weight=3),
    ],
    "EVENT": [
        _opt("looked <SPOT>, but the {item} was not there. ", weight=4),
        _opt(
            "asked <FRIEND> for help. The {friend} had not seen the {color} {item}. ",
            weight=3,
        ),
        _opt("felt sad and <SAD>. ", weight=2),
        _opt("walked to <PLACE> to look. ", weight=2),
    ],
    "SPOT": _words(
        "under the bed",
        "behind the door",
        "in the garden",
        "by the pond",
        "near the big rock",
        "inside a box",
    ),
    "FRIEND": [
        _opt(f"{a} {f}", friend=f)
        for a, f in [
            ("a wise", "owl"),
            ("an old", "turtle"),
            ("a busy", "squirrel"),
            ("a tall", "giraffe"),
            ("a friendly", "goat"),
        ]
    ],
    "SAD": _words(
        "sat down for a while", "sang a quiet song", "ate an apple", "cried a little"
    ),
    "END": [_opt("{hero} found {his} {color} {item} <SPOT>. {He} <JOY>.")],
    "JOY": _words(
        "smiled all day",
        "danced around the room",
        "hugged it tight",
        "never lost it again",
        "was very happy",
    ),
}


def _leading_literal(symbols: tuple) -> str | None:
    first = symbols[0]
    return None if first[0] in "<{" else first


def check_grammar(grammar: dict = GRAMMAR) -> None:
    """Raise ValueError unless the grammar can be parsed back without ambiguity:
    every option of a multi-option rule starts with a literal, no literal is a
    prefix of another, and every variable is bound by exactly one rule."""
    binders: dict[str, str] = {}
    for name, options in grammar.items():
        if len(options) > 1:
            lits = [_leading_literal(s) for _, s, _ in options]
            if None in lits:
                raise ValueError(f"rule {name}: every option must start with text")
            for a in lits:
                for b in lits:
                    if a is not b and b.startswith(a):
                        raise ValueError(f"rule {name}: {a!r} is a prefix of {b!r}")
        for var in {v for _, _, bind in options for v in bind}:
            if var in binders and binders[var] != name:
                raise ValueError(f"variable {var} bound by {binders[var]} and {name}")
            binders[var] = name
            if any(var not in bind for _, _, bind in options):
                raise ValueError(f"rule {name}: some options do not bind {var}")


def _tables(grammar: dict) -> dict[str, tuple[list[int], int]]:
    """Per rule: integer cumulative weights and their total."""
    out = {}
    for name, options in grammar.items():
        cum, total = [], 0
        for weight, _, _ in options:
            total += weight
            cum.append(total)
        out[name] = (cum, total)
    return out


_TABLES = _tables(GRAMMAR)


def _expand(name: str, rng: random.Random, env: dict, out: list, choices: list):
    options = GRAMMAR[name]
    cum, total = _TABLES[name]
    i = 0
    if len(options) > 1:
        u = rng.random() * total
        while u >= cum[i]:
            i += 1
        choices.append((name, i))
    _, symbols, bind = options[i]
    env.update(bind)
    for s in symbols:
        if s[0] == "<":
            _expand(s[1:-1], rng, env, out, choices)
        elif s[0] == "{":
            out.append(env[s[1:-1]])
        else:
            out.append(s)


def sample_story(rng: random.Random) -> tuple[str, list[tuple[str, int]]]:
    """One story (ending in "\\n") and the (rule, option) choices that made it."""
    out: list[str] = []
    choices: list[tuple[str, int]] = []
    _expand("STORY", rng, {}, out, choices)
    return "".join(out), choices


def generate(n_bytes: int = STORY_BYTES, seed: int = STORY_SEED) -> str:
    """Whole stories from ``random.Random(seed)`` until at least n_bytes bytes.

    The text is ASCII, so bytes and characters agree. Example: the default
    corpus is ``generate()`` (see corpora/stories.md for its sha256).
    """
    if n_bytes < 1:
        raise ValueError(f"n_bytes must be positive, got {n_bytes}")
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_bytes:
        story, _ = sample_story(rng)
        parts.append(story)
        size += len(story)
    return "".join(parts)


def parse_story(text: str, pos: int = 0) -> tuple[list[tuple[str, int]], int]:
    """Read the choices back from a story starting at ``pos``.

    Returns (choices, end) where ``end`` is the offset after the story's "\\n".
    Raises ValueError naming the offset where the text leaves the grammar.
    """
    choices: list[tuple[str, int]] = []
    end = _parse(text, pos, "STORY", {}, choices)
    return choices, end


def _parse(text: str, pos: int, name: str, env: dict, choices: list) -> int:
    options = GRAMMAR[name]
    i = 0
    if len(options) > 1:
        hits = [k for k, (_, s, _) in enumerate(options) if text.startswith(s[0], pos)]
        if not hits:
            raise ValueError(
                f"offset {pos}: no option of rule {name} matches "
                f"{text[pos : pos + 30]!r}"
            )
        i = hits[0]
        choices.append((name, i))
    _, symbols, bind = options[i]
    env.update(bind)
    for s in symbols:
        if s[0] == "<":
            pos = _parse(text, pos, s[1:-1], env, choices)
            continue
        lit = env[s[1:-1]] if s[0] == "{" else s
        if not text.startswith(lit, pos):
            raise ValueError(
                f"offset {pos}: expected {lit!r} in rule {name}, "
                f"found {text[pos : pos + len(lit)]!r}"
            )
        pos += len(lit)
    return pos


def log2_prob(choices: list[tuple[str, int]]) -> float:
    """log2 p(story) = sum of log2 p(option) over the choices that made it."""
    total = 0.0
    for name, i in choices:
        cum, t = _TABLES[name]
        total += math.log2(GRAMMAR[name][i][0] / t)
    return total


def _expectations(grammar: dict) -> tuple[dict, dict]:
    """Expected bits H[r] and bytes L[r] produced by expanding rule r."""
    probs = {
        r: [w / sum(o[0] for o in opts) for w, _, _ in opts]
        for r, opts in grammar.items()
    }
    var_len = {}
    for r, opts in grammar.items():
        for var in opts[0][2]:
            var_len[var] = sum(
                p * len(b[var]) for p, (_, _, b) in zip(probs[r], opts, strict=True)
            )
    H = dict.fromkeys(grammar, 0.0)
    L = dict.fromkeys(grammar, 0.0)
    for _ in range(10_000):  # fixed point: MORE refers to itself
        H_new, L_new = {}, {}
        for r, opts in grammar.items():
            h = l_ = 0.0
            for p, (_, symbols, _) in zip(probs[r], opts, strict=True):
                h += -p * math.log2(p) if len(opts) > 1 else 0.0
                for s in symbols:
                    if s[0] == "<":
                        h += p * H[s[1:-1]]
                        l_ += p * L[s[1:-1]]
                    else:
                        l_ += p * (var_len[s[1:-1]] if s[0] == "{" else len(s))
            H_new[r], L_new[r] = h, l_
        done = all(abs(H_new[r] - H[r]) + abs(L_new[r] - L[r]) < 1e-13 for r in H)
        H, L = H_new, L_new
        if done:
            break
    return H, L


def story_stats() -> dict[str, float]:
    """Exact expectations for one story: bits, bytes and their ratio."""
    H, L = _expectations(GRAMMAR)
    bits, nbytes = H["STORY"], L["STORY"]
    return {
        "bits_per_story": bits,
        "bytes_per_story": nbytes,
        "bits_per_byte": bits / nbytes,
    }


def entropy_rate() -> float:
    """The true entropy rate of the generated corpus in bits per byte.

    Stories are i.i.d. and end in "\\n", so the rate is E[bits] / E[bytes] of
    one story (the separator's byte counted, its zero bits too). No model of
    the text can reach a lower held-out loss, in expectation.
    """
    return story_stats()["bits_per_byte"]
