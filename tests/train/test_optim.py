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
