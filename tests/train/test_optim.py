"""labkit.train.optim: AdamW groups, decayed and not decayed."""

import dataclasses

import torch

from labkit.model import GPT
from labkit.train import make_optimizer, param_groups


def test_param_groups_no_decay_on_norms_biases_embeddings(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, tie_weights=False)
    decay, no_decay = param_groups(GPT(cfg), 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert "tok_emb.weight" in no_decay["names"]
    assert "pos_emb.weight" in " ".join(no_decay["names"])
    assert "lm_head.weight" in decay["names"]
    assert all(n.endswith(("bias", "weight")) for n in no_decay["names"])
    assert not any("norm" in n or n.endswith("bias") for n in decay["names"])
    total = sum(p.numel() for p in GPT(cfg).parameters())
    counted = sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    assert counted == total


def test_tied_head_is_counted_once_and_not_decayed(tiny_cfg):
    decay, no_decay = param_groups(GPT(tiny_cfg), 0.1)
    names = decay["names"] + no_decay["names"]
    assert "lm_head.weight" not in names and "tok_emb.weight" in no_decay["names"]


def test_a_step_with_zero_gradients_shrinks_only_the_decayed_group(tiny_cfg, cfg):
    model = GPT(dataclasses.replace(tiny_cfg, tie_weights=False))
    opt = make_optimizer(model, cfg(lr=0.5, weight_decay=0.1))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # AdamW's decoupled decay: p -= lr * wd * p; the moments stay 0
    decayed = set(param_groups(model, 0.1)[0]["names"])
    for name, p in model.named_parameters():
        factor = 1 - 0.5 * 0.1 if name in decayed else 1.0
        torch.testing.assert_close(p.detach(), before[name] * factor)
    assert {"lm_head.weight", "blocks.0.attn.q_proj.weight"} <= decayed


def test_adamw_step_matches_torch_adamw_over_many_steps():
    from labkit.train.optim import adamw_step

    gen = torch.Generator().manual_seed(0)
    start = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    theirs = torch.nn.Parameter(start.clone())
    opt = torch.optim.AdamW(
        [theirs], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1
    )
    ours, m, v = start.clone(), torch.zeros_like(start), torch.zeros_like(start)
    for step in range(1, 201):
        grad = torch.randn(5, 7, generator=gen, dtype=torch.float64) * step**0.5
        theirs.grad = grad.clone()
        opt.step()
        ours, m, v = adamw_step(
            ours, grad, m, v, step, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1
        )
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-12, atol=1e-12)
    assert (ours - start).abs().max() > 0.3  # 200 steps moved the weights


def test_adamw_first_step_is_lr_times_sign_and_decay_is_decoupled():
    from labkit.train.optim import adamw_step

    p = torch.tensor([1.0, -2.0, 3.0])
    g = torch.tensor([0.5, -100.0, 0.0])
    zero = torch.zeros(3)
    new, m, v = adamw_step(p, g, zero, zero, 1, lr=0.1, weight_decay=0.0)
    # m-hat = g, v-hat = g**2: the step is lr * g / (|g| + eps)
    torch.testing.assert_close(new, torch.tensor([0.9, -1.9, 3.0]))
    torch.testing.assert_close(m, 0.1 * g)
    # a zero gradient and decay 0.5 at lr 0.1: the weight shrinks by 5%
    new, _, _ = adamw_step(p, zero, zero, zero, 1, lr=0.1, weight_decay=0.5)
    torch.testing.assert_close(new, 0.95 * p)
    assert torch.equal(p, torch.tensor([1.0, -2.0, 3.0]))  # inputs untouched


def test_adamw_step_refuses_step_zero():
    import pytest

    from labkit.train.optim import adamw_step

    with pytest.raises(ValueError, match="step counts from 1"):
        adamw_step(torch.ones(1), torch.ones(1), torch.zeros(1), torch.zeros(1), 0,
                   lr=0.1)  # fmt: skip
