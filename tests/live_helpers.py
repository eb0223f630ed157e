"""Helpers for the live-model tests (tests/booktools/test_live_*.py)."""

import dataclasses


def tiny_model(seed: int = 0, **changes):
    """A random labkit GPT (eval mode) of a tiny config, with norms and biases
    randomised too, so that every parameter matters to the logits."""
    import torch

    from labkit.model import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=256, context_len=32, n_layers=2, n_heads=4, d_model=32)
    cfg = dataclasses.replace(cfg, **changes)
    torch.manual_seed(seed)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.2)
    return model


def wait_ready(page, selector: str = ".labkit-live", timeout: int = 30_000):
    """The first component's element once it has started (or failed)."""
    el = page.wait_for_selector(selector)
    page.wait_for_function(
        "el => el.dataset.state && el.dataset.state !== 'loading'",
        arg=el,
        timeout=timeout,
    )
    return el
