"""AdamW with two parameter groups: decayed and not decayed.

Weight decay pulls weights toward zero. It is applied to the matrices that mix
features (attention and MLP projections, an untied output head) and not to:

* biases and norm gains (1-D tensors): decaying a gain toward 0 switches a
  norm off, and biases only shift;
* embeddings (token and learned position tables), by convention: minGPT
  lists nn.Embedding among the modules it never decays. The reason often
  given, that a row moves only when its token appears so decay would shrink
  rare tokens' rows, is at best true of an untied input table under plain
  SGD; it is false for a tied table, which is also the output head: the
  softmax sends a gradient to every row at every step. So this is a choice,
  not a derivation (nanoGPT decays every 2-D tensor, the tied table
  included); ``param_groups`` is short, to make it easy to flip and compare.

``adamw_step`` is the update written out on one tensor (what
torch.optim.AdamW does, in the same order of operations), so a chapter can
check its own AdamW against it and torch's.
(Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization".)
Built in: notebooks/11_training_loop.ipynb.
"""

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: {"params": decayed, ...} and {"params": not decayed}.

    Each parameter appears once (tied weights are counted once). The groups
    carry a "names" list so a reader can check where each tensor went.
    """
    embedding_params = {
        id(p)
        for module in model.modules()
        if isinstance(module, nn.Embedding)
        for p in module.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() < 2 or id(p) in embedding_params:
            no_decay.append((name, p))
        else:
            decay.append((name, p))
    return [
        {
            "params": [p for _, p in decay],
            "names": [n for n, _ in decay],
            "weight_decay": weight_decay,
        },
        {
            "params": [p for _, p in no_decay],
            "names": [n for n, _ in no_decay],
            "weight_decay": 0.0,
        },
    ]


def adamw_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One AdamW update of one tensor; returns (param, exp_avg, exp_avg_sq).

    ``step`` counts from 1 (the bias corrections divide by 1 - beta**step).
    The decay is decoupled: the weight shrinks by lr * weight_decay of itself,
    apart from the gradient's moments. Inputs are not modified.
    Shapes: every tensor has the parameter's shape.
    Example: the first step moves each weight by about lr * sign(grad).
    """
    if step < 1:
        raise ValueError(f"step counts from 1, got {step}")
    beta1, beta2 = betas
    param = param * (1 - lr * weight_decay)  # decoupled weight decay
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad  # first moment
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad  # second moment
    correction1 = 1 - beta1**step  # the moments start at 0: undo that bias
    correction2 = 1 - beta2**step
    denom = exp_avg_sq.sqrt() / correction2**0.5 + eps
    param = param - (lr / correction1) * exp_avg / denom
    return param, exp_avg, exp_avg_sq


def make_optimizer(model: nn.Module, cfg, device_type: str = "cpu"):
    """AdamW over ``param_groups`` with the TrainConfig's betas and eps.

    The fused kernel is used on CUDA and on CPU (same maths, one pass over
    the parameters instead of several: about 5% of a small model's step on a
    2-core CPU).
    """
    groups = param_groups(model, cfg.weight_decay)
    for g in groups:
        g.pop("names")
    return torch.optim.AdamW(
        groups,
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        fused=device_type in ("cuda", "cpu"),
    )
