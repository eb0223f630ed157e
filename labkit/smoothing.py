"""Smoothing: four ways to turn n-gram counts into probabilities.

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
* ``kneser_ney`` (interpolated, one discount D for every order):
  max(N(c, x) - D, 0) / N(c) + D T(c) / N(c) p'(x), where T(c) is the number
  of distinct symbols seen after c; every order below the top counts
  continuations (after how many distinct symbols a run was seen) instead of
  occurrences (Kneser and Ney, 1995; Chen and Goodman, 1999).

``next_probs`` gives a whole next-symbol distribution by smoothing name, and
``cross_entropy_bits`` the mean -log2 p: bits per byte when symbols are bytes.
Built in: notebooks/04_counting_models.ipynb.
Leaves out on purpose: modified Kneser-Ney (three discounts per order) and
discounts or betas estimated from the counts.
"""

from __future__ import annotations

import numpy as np

from labkit.ngram import Lookups, NGramCounts, lookup_context

SMOOTHINGS = ("add_alpha", "backoff", "interpolate", "kneser_ney")


def _upto(looked: Lookups, order: int | None) -> int:
    order = looked.n if order is None else order
    if not 1 <= order <= looked.n:
        raise ValueError(f"order must be in 1..{looked.n}, got {order}")
    return order


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")


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
    p = add_alpha(looked, alpha, 1)
    for k in range(2, _upto(looked, order) + 1):
        seen = looked.ctx_count[k - 1] > 0
        p = np.where(seen, add_alpha(looked, alpha, k), p)
    return p


def interpolate(looked: Lookups, beta: float, order: int | None = None):
    """(N(c, x) + beta p') / (N(c) + beta), from p' = 1/V up, order by order.

    Shapes: (Q,) probabilities.
    """
    _positive("beta", beta)
    p = np.full(looked.run_count[0].shape, 1 / looked.vocab_size)
    for k in range(_upto(looked, order)):
        p = (looked.run_count[k] + beta * p) / (looked.ctx_count[k] + beta)
    return p


def kneser_ney(looked: Lookups, discount: float = 0.75, order: int | None = None):
    """Interpolated Kneser-Ney with one discount, continuation counts below
    the top order, and the uniform 1/V under order 1.

    Shapes: (Q,) probabilities.
    """
    if not 0 < discount <= 1:
        raise ValueError(f"discount must be in (0, 1], got {discount}")
    top = _upto(looked, order)
    p = np.full(looked.run_count[0].shape, 1 / looked.vocab_size)
    for k in range(top):
        if k == top - 1:  # the top order counts occurrences
            n_cx, n_c = looked.run_count[k], looked.ctx_count[k]
            types = looked.ctx_types[k]
        else:  # the orders below count continuations
            n_cx, n_c = looked.run_cont[k], looked.ctx_cont[k]
            types = looked.ctx_cont_types[k]
        kept = np.maximum(n_cx - discount, 0) + discount * types * p
        p = np.where(n_c > 0, kept / np.maximum(n_c, 1), p)
    return p


def next_probs(
    counts: NGramCounts,
    context,
    smoothing: str = "add_alpha",
    value: float = 0.01,
    order: int | None = None,
) -> np.ndarray:
    """The distribution of the symbol after ``context``, smoothed by name.

    ``value`` is alpha, alpha, beta or the discount (see SMOOTHINGS);
    ``order`` (default: the counts' n) is the model's order.
    Shapes: context (L,) with L >= order - 1 -> (V,) probabilities, sum 1.
    """
    methods = dict(
        zip(SMOOTHINGS, (add_alpha, backoff, interpolate, kneser_ney), strict=True)
    )
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
