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
