"""Checks for the exercises of the chapter on embeddings and a first training loop.

The references are torch's own: autograd through ``F.embedding`` for the
gradient of an embedding table, ``torch.optim.Adam`` for one optimiser step,
and ``F.cross_entropy`` with ``ignore_index`` for the masked loss (labkit uses
these directly, so torch is labkit's implementation here).

Built in: notebooks/05_embeddings_first_training.ipynb.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from labkit.exercises import Case, CheckResult, run_check, tensors_close


def _embedding_grad(idx: torch.Tensor, grad_out: torch.Tensor, V: int) -> torch.Tensor:
    weight = torch.zeros(V, grad_out.shape[-1], dtype=grad_out.dtype)
    weight.requires_grad_()
    F.embedding(idx, weight).backward(grad_out)
    return weight.grad


def _embedding_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)

    def case(idx, C: int, V: int, hint: str) -> Case:
        idx = torch.tensor(idx)
        grad_out = torch.randn(*idx.shape, C, generator=gen)
        label = f"idx={idx.tolist()}, grad_out of shape {tuple(grad_out.shape)}, V={V}"
        return Case((idx, grad_out, V), _embedding_grad(idx, grad_out, V), hint, label)

    cases = [
        case(
            [[0, 1, 2]],
            2,
            3,
            "each token once: row i of the gradient is the grad_out "
            "of the position that looked up row i",
        ),
        case(
            [[1, 1, 1]],
            2,
            2,
            "a token looked up several times gets the SUM of their "
            "gradients; g[idx] += grad_out keeps only one of them (use "
            "index_add_, or one_hot(idx, V).T @ grad_out)",
        ),
        case(
            [[2, 0]],
            3,
            6,
            "the gradient has V rows, one per entry of the table; tokens "
            "not in the batch get a row of zeros",
        ),
        case([4, 4, 0], 2, 5, "idx may be 1-D (T,), with grad_out (T, C)"),
        case(
            [[3, 1], [1, 3]],
            4,
            4,
            "a batch (B, T): repeats across rows add up too",
        ),
    ]
    for B, T, C, V in ((2, 5, 3, 7), (4, 16, 8, 10), (3, 9, 5, 50)):
        idx = torch.randint(V, (B, T), generator=gen).tolist()
        cases.append(case(idx, C, V, "random batch"))
    return cases


def check_embedding_backward(fn) -> CheckResult:
    """Check ``fn(idx, grad_out, vocab_size) -> (V, C)``: the gradient of the
    loss with respect to an embedding table, given the gradient at its output.
    """
    return run_check(
        "check_embedding_backward",
        fn,
        _embedding_cases(),
        tensors_close,
        summary="one each, repeats, unseen rows, 1-D and batched ids, 3 random",
        forbidden=(".backward(", "autograd", "torch.func", "F.embedding"),
    )


ADAM_DEFAULTS = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def _torch_adam(param, grad, m, v, t: int, lr: float, beta1, beta2, eps):
    p = torch.nn.Parameter(param.clone())
    opt = torch.optim.Adam([p], lr=lr, betas=(beta1, beta2), eps=eps)
    opt.state[p] = {
        "step": torch.tensor(float(t - 1)),
        "exp_avg": m.clone(),
        "exp_avg_sq": v.clone(),
    }
    p.grad = grad.clone()
    opt.step()
    state = opt.state[p]
    return p.detach().clone(), state["exp_avg"].clone(), state["exp_avg_sq"].clone()


def _adam_case(shape, t: int, lr: float, hint: str, grad_scale=1.0, seed=0, **betas):
    gen = torch.Generator().manual_seed(seed)
    opts = ADAM_DEFAULTS | betas
    param = torch.randn(shape, generator=gen, dtype=torch.float64)
    grad = torch.randn(shape, generator=gen, dtype=torch.float64) * grad_scale
    if t == 1:
        m, v = torch.zeros_like(param), torch.zeros_like(param)
    else:  # a state that earlier steps could have left
        m = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        v = 0.1 * torch.rand(shape, generator=gen, dtype=torch.float64) + m**2
    args = (param, grad, m, v, t, lr, opts["beta1"], opts["beta2"], opts["eps"])
    expected = _torch_adam(*args)
    label = f"param and grad of shape {tuple(shape)}, t={t}, lr={lr:g}"
    if grad_scale != 1.0:
        label += f", grad scaled by {grad_scale:g}"
    if betas:
        label += ", " + ", ".join(f"{k}={x:g}" for k, x in betas.items())
    return Case(args, expected, hint, label=label)


def _adam_cases() -> list[Case]:
    cases = [
        _adam_case(
            (4,),
            1,
            0.1,
            "first step (t=1, m = v = 0): after bias correction m_hat = g and "
            "v_hat = g^2, so every weight moves by about lr; without dividing "
            "by 1 - beta**t it moves about 3 times too far",
        ),
        _adam_case(
            (4,),
            1,
            0.1,
            "a gradient 1000 times larger moves the weights exactly as far: "
            "Adam's step does not grow with the gradient",
            grad_scale=1e3,
        ),
        _adam_case(
            (3,),
            1,
            0.1,
            "tiny gradients: eps is added to sqrt(v_hat), outside the square root",
            grad_scale=1e-7,
        ),
        _adam_case(
            (2, 3),
            10,
            0.01,
            "a later step: update m and v first, then bias-correct them with "
            "beta1**t and beta2**t, t counted from 1",
        ),
        _adam_case(
            (5,),
            3,
            0.05,
            "other betas and eps: use the arguments, not the defaults",
            beta1=0.5,
            beta2=0.9,
            eps=1e-3,
        ),
    ]
    for seed, t in enumerate((2, 7, 50, 1000), start=1):
        cases.append(_adam_case((3, 4), t, 0.003, "random state", seed=seed))
    return cases


def check_adam_step(fn) -> CheckResult:
    """Check ``fn(param, grad, m, v, t, lr, beta1, beta2, eps) -> (param, m,
    v)``: one Adam update at step t (counted from 1), against torch.optim.Adam.
    """
    compare = functools.partial(tensors_close, rtol=1e-7, atol=1e-12)
    return run_check(
        "check_adam_step",
        fn,
        _adam_cases(),
        compare,
        summary="first step, large and tiny gradients, later steps, other "
        "betas, 4 random states",
        forbidden=("torch.optim", "optim.Adam"),
    )


def _masked_case(logits, targets, ignore_index: int, hint: str) -> Case:
    logits = torch.as_tensor(logits, dtype=torch.float32)
    targets = torch.as_tensor(targets)
    expected = F.cross_entropy(logits, targets, ignore_index=ignore_index)
    shown = logits.tolist() if logits.numel() <= 8 else f"shape {tuple(logits.shape)}"
    label = f"logits {shown}, targets {targets.tolist()}, ignore_index={ignore_index}"
    return Case((logits, targets, ignore_index), expected, hint, label=label)


def _masked_cases() -> list[Case]:
    cases = [
        _masked_case(
            [[0.0, 0.0, 0.0]],
            [1],
            -100,
            "equal logits: every token has probability 1/3, the loss is ln 3",
        ),
        _masked_case(
            [[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]],
            [0, -100],
            -100,
            "the second target is ignored: the loss is the first row's "
            "alone (divide by the number of targets kept, not by N)",
        ),
        _masked_case(
            [[1000.0, 0.0, -1000.0]],
            [0],
            -100,
            "large logits: exp(1000) overflows unless the row's maximum is "
            "subtracted first",
        ),
        _masked_case(
            [[0.0, -1000.0]],
            [1],
            -100,
            "a target with probability e^-1000: log(softmax) gives log(0) = "
            "-inf; compute the log-probability as z - max - log(sum exp(z - max))",
        ),
        _masked_case(
            [[0.5, 1.5], [1.0, -1.0], [0.0, 0.0]],
            [0, 1, 0],
            0,
            "ignore_index can be a real class id: here every target 0 is ignored",
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    for N, V in ((6, 5), (32, 11), (64, 256)):
        logits = 3 * torch.randn(N, V, generator=gen)
        targets = torch.randint(V, (N,), generator=gen)
        targets[torch.rand(N, generator=gen) < 0.3] = -100
        targets[0] = 1  # at least one target is kept
        cases.append(_masked_case(logits, targets, -100, "random, a third ignored"))
    return cases


def check_masked_cross_entropy(fn) -> CheckResult:
    """Check ``fn(logits, targets, ignore_index) -> scalar tensor``: the mean
    cross-entropy (natural log) over the targets that are not ignore_index.
    Logits are (N, V); no case ignores every target. torch's losses and
    log-softmax, as functions or as ``nn`` classes, are refused.
    """
    return run_check(
        "check_masked_cross_entropy",
        fn,
        _masked_cases(),
        tensors_close,
        summary="ln 3, an ignored target, large logits, a tiny probability, "
        "ignore_index 0, 3 random",
        forbidden=(
            "F.cross_entropy",
            ".cross_entropy(",
            "functional",
            "log_softmax",
            "nll_loss",
            "CrossEntropyLoss",
            "NLLLoss",
            "LogSoftmax",
        ),
        references=(F.cross_entropy,),
    )
