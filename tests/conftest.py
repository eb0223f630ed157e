"""Shared fixtures: seeds, the ../shared reference files, small configs."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The reference files beside the repo (Tiny Shakespeare, GPT-2 vocab/merges).

    Tests that need them skip, saying why, on a machine that lacks them.
    """
    if not SHARED.is_dir():
        pytest.skip(
            f"reference files not found at {SHARED} (../shared beside the repo)"
        )
    return SHARED


@pytest.fixture
def seed() -> int:
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        pass
    return 0
