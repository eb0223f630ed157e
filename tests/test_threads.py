import pytest
import torch

from labkit.threads import torch_threads


def test_the_block_runs_on_n_threads_and_the_callers_count_comes_back():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
        with pytest.raises(RuntimeError), torch_threads(2):
            raise RuntimeError("the block failed")
        assert torch.get_num_threads() == 1  # restored when the block raises
    finally:
        torch.set_num_threads(before)


def test_zero_threads_is_refused_by_name():
    with pytest.raises(ValueError, match="n >= 1"), torch_threads(0):
        pass
