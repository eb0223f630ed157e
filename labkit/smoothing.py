"""Smoothing: five ways to turn n-gram counts into probabilities.

Each function takes the counts looked up for Q predictions
(``labkit.ngram.lookup_text`` or ``lookup_context``), one knob and an order,
and gives the Q probabilities:

* ``add_alpha``: (N(c, x) + alpha) / (N(c) + V alpha), at one order: V alpha
  pseudo-counts spread evenly over the V symbols;
* ``backoff``: add-alpha at the longest order whose context was seen;
* ``interpolate``: (N(c, x) + beta p'(x)) / (N(c) + beta), where p' is the
  same model with one symbol less of context, down to the uniform 1/V: beta
  pseudo-counts spread as the shorter context predicts (a Dirichlet prior
  centred on the shorter model, MacKay and Peto, 1995);
* ``absolute_discounting`` (interpolated, one discount D for every order):
  max(N(c, x) - D, 0) / N(c) + D T(c) / N(c) p'(x), where T(c) is the number
  of distinct symbols seen after c, with occurrences counted at every order
  (Ney, Essen and Kneser, 1994);
* ``kneser_ney``: the same, except that every order below the top counts
  continuations (after how many distinct symbols a run was seen) instead of
  occurrences, and N(c), T(c) become the totals of those continuation counts
  (Kneser and Ney, 1995; Chen and Goodman, 1999).

``next_probs`` gives a whole next-symbol distribution by smoothing name,
``cross_entropy_bits`` the mean -log2 p (bits per byte when symbols are
bytes), and ``bits_by_order`` that loss at many orders in one pass.
Built in: notebooks/04_counting_models.ipynb.
Leaves out on purpose: modified Kneser-Ney (three discounts per order) and
discounts or betas estimated from the counts.
"""

from __future__ import annotations

import numpy as np

from labkit.ngram import Lookups, NGramCounts, lookup_context

SMOOTHINGS = (
    "add_alpha",
    "backoff",
    "interpolate",
    "absolute_discounting",
    "kneser_ney",
)


def _upto(looked: Lookups, order: int | None) -> int:
    order = looked.n if order is None else order
    if not 1 <= order <= looked.n:
        raise ValueError(f"order must be in 1..{looked.n}, got {order}")
    return order


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _add_alpha_steps(looked: Lookups, alpha: float):
    _positive("alpha", alpha)
    V = looked.vocab_size
    for n_cx, n_c in zip(looked.run_count, looked.ctx_count, strict=True):
        yield (n_cx + alpha) / (n_c + alpha * V)


def _backoff_steps(looked: Lookups, alpha: float):
    p = None
    for k, q in enumerate(_add_alpha_steps(looked, alpha)):
        p = q if k == 0 else np.where(looked.ctx_count[k] > 0, q, p)
        yield p


def _interpolate_steps(looked: Lookups, beta: float):
    _positive("beta", beta)
    p = np.full(looked.run_count[0].shape, 1 / looked.vocab_size)
    for n_cx, n_c in zip(looked.run_count, looked.ctx_count, strict=True):
        p = (n_cx + beta * p) / (n_c + beta)
        yield p


def _discount_step(n_cx, n_c, types, discount: float, p):
    kept = np.maximum(n_cx - discount, 0) + discount * types * p
    return np.where(n_c > 0, kept / np.maximum(n_c, 1), p)  # unseen: p stays


def _discounted_steps(looked: Lookups, discount: float, continuations: bool):
    """Order k's model: occurrences at order k on top of the orders below,
    which count continuations (Kneser-Ney) or occurrences (absolute)."""
    if not 0 < discount <= 1:
        raise ValueError(f"discount must be in (0, 1], got {discount}")
    below = np.full(looked.run_count[0].shape, 1 / looked.vocab_size)
    for k in range(looked.n):
        occurrences = (looked.run_count[k], looked.ctx_count[k], looked.ctx_types[k])
        top = _discount_step(*occurrences, discount, below)
        yield top
        if continuations:
            conts = (looked.run_cont[k], looked.ctx_cont[k], looked.ctx_cont_types[k])
            below = _discount_step(*conts, discount, below)
        else:
            below = top


def _steps(looked: Lookups, smoothing: str, value: float):
    """The probabilities of orders 1, 2, ..., n in turn, for one smoothing."""
    if smoothing == "add_alpha":
        return _add_alpha_steps(looked, value)
    if smoothing == "backoff":
        return _backoff_steps(looked, value)
    if smoothing == "interpolate":
        return _interpolate_steps(looked, value)
    if smoothing in ("absolute_discounting", "kneser_ney"):
        return _discounted_steps(looked, value, smoothing == "kneser_ney")
    raise ValueError(
        f"unknown smoothing {smoothing!r}; choose one of {', '.join(SMOOTHINGS)}"
    )


def _at(looked: Lookups, smoothing: str, value: float, order: int | None):
    top = _upto(looked, order)
    for k, p in enumerate(_steps(looked, smoothing, value), start=1):
        if k == top:
            return p


def add_alpha(looked: Lookups, alpha: float, order: int | None = None):
    """(N(c, x) + alpha) / (N(c) + V alpha) at one order (default: the top).

    Shapes: (Q,) probabilities, one per prediction.
    """
    _positive("alpha", alpha)
    k = _upto(looked, order) - 1
    V = looked.vocab_size
    return (looked.run_count[k] + alpha) / (looked.ctx_count[k] + alpha * V)


def backoff(looked: Lookups, alpha: float, order: int | None = None):
    """Add-alpha at the longest order <= ``order`` whose context was seen.

    Shapes: (Q,) probabilities.
    """
    return _at(looked, "backoff", alpha, order)


def interpolate(looked: Lookups, beta: float, order: int | None = None):
    """(N(c, x) + beta p') / (N(c) + beta), from p' = 1/V up, order by order.

    Shapes: (Q,) probabilities.
    """
    return _at(looked, "interpolate", beta, order)


def absolute_discounting(
    looked: Lookups, discount: float = 0.75, order: int | None = None
):
    """Interpolated absolute discounting: one discount, occurrences counted at
    every order, and the uniform 1/V under order 1.

    Shapes: (Q,) probabilities.
    """
    return _at(looked, "absolute_discounting", discount, order)


def kneser_ney(looked: Lookups, discount: float = 0.75, order: int | None = None):
    """Interpolated Kneser-Ney with one discount, continuation counts below
    the top order, and the uniform 1/V under order 1.

    Shapes: (Q,) probabilities.
    """
    return _at(looked, "kneser_ney", discount, order)


def bits_by_order(
    looked: Lookups, smoothing: str, value: float, orders=None
) -> list[float]:
    """Cross-entropy (mean -log2 p) of one smoothing at each of ``orders``
    (default 1..n), in one pass over the orders: the same numbers as
    ``cross_entropy_bits(<smoothing>(looked, value, k))`` for each k.

    Shapes: -> one float per order, in the order given.
    """
    orders = list(range(1, looked.n + 1)) if orders is None else list(orders)
    for k in orders:
        _upto(looked, k)
    wanted, found = set(orders), {}
    for k, p in enumerate(_steps(looked, smoothing, value), start=1):
        if k in wanted:
            found[k] = cross_entropy_bits(p)
        if k == max(orders):
            break
    return [found[k] for k in orders]


def next_probs(
    counts: NGramCounts,
    context,
    smoothing: str = "add_alpha",
    value: float = 0.01,
    order: int | None = None,
) -> np.ndarray:
    """The distribution of the symbol after ``context``, smoothed by name.

    ``value`` is the knob: alpha (add_alpha, backoff), beta (interpolate) or
    the discount D (absolute_discounting, kneser_ney);
    ``order`` (default: the counts' n) is the model's order.
    Shapes: context (L,) with L >= order - 1 -> (V,) probabilities, sum 1.
    """
    functions = (add_alpha, backoff, interpolate, absolute_discounting, kneser_ney)
    methods = dict(zip(SMOOTHINGS, functions, strict=True))
    if smoothing not in methods:
        raise ValueError(
            f"unknown smoothing {smoothing!r}; choose one of {', '.join(SMOOTHINGS)}"
        )
    return methods[smoothing](lookup_context(counts, context, order), value)


def cross_entropy_bits(probs) -> float:
    """Mean -log2 p over the probabilities a model gave to what came.

    Shapes: probs (Q,) -> a float (bits per symbol; per byte for bytes).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0 or (probs <= 0).any() or (probs > 1).any():
        raise ValueError("probabilities must be non-empty and in (0, 1]")
    return float(-np.log2(probs).mean())
