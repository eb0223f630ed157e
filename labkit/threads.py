"""Run a block of code on a fixed number of torch CPU threads.

CPU kernels split their sums by thread count, so a result (a recipe's
weights) can depend on it, and process CPU time counts the time a waiting
thread spins (chapter 12's timings). ``torch_threads(n)`` sets the count for
a ``with`` block and restores the caller's, also when the block raises.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch.set_num_threads(n) inside the block, the caller's count after."""
    if n < 1:
        raise ValueError(f"torch_threads needs n >= 1 threads, got {n}")
    callers = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(callers)
