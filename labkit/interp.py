"""Looking inside a GPT: attention maps, head labels, the logit lens.

Everything here reads a model through ``labkit.model.trace`` (forward hooks), so
it works on any labkit ``GPT``, including GPT-2 loaded with
``labkit.hf.from_hf_gpt2``. Functions take tensors and return tensors or small
dataclasses; figures are left to the chapter (and to ``attention_figure``, which
imports plotly only when called).

- attention: every layer's and head's weights, their entropy, the strongest
  query-to-key links, and a label per head from its pattern (previous-token,
  first-token / sink, local, induction, diffuse) with the score behind it;
- the logit lens (nostalgebraist, 2020): what the residual stream would predict
  if the model stopped after each block; per-position top-k predictions;
- how much attention and the MLP write into the residual stream per layer, and
  how similar positions' representations are across layers.

Built in: notebooks/13_inside_a_trained_model.ipynb.
Causal tests (ablation, activation patching, direct logit attribution) are in
``labkit.circuits``.
Left out on purpose: attribution graphs, sparse autoencoders; the tuned lens
(one learned map per layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from labkit.model import trace

LABELS = ("induction", "previous-token", "first-token", "local", "diffuse")


@dataclass(frozen=True)
class Inspection:
    """One forward pass, seen from inside.

    Shapes: tokens (T,), logits (T, V), weights (L, H, T, T),
    resid (L + 1, T, C): the stream entering each block, then the final one;
    attn_out and mlp_out (L, T, C).
    """

    tokens: torch.Tensor
    logits: torch.Tensor
    weights: torch.Tensor
    resid: torch.Tensor
    attn_out: torch.Tensor
    mlp_out: torch.Tensor


@torch.no_grad()
def inspect(model, tokens) -> Inspection:
    """Run ``model`` once on one sequence and collect what the chapter looks at.

    Shapes: tokens (T,) long (or a list of ids) -> Inspection
    """
    idx = torch.as_tensor(tokens, dtype=torch.long).reshape(1, -1)  # (1, T)
    with trace(model) as acts:
        logits = model(idx, need_weights=True)  # (1, T, V)
    L = len(model.blocks)

    def stack(name):
        return torch.stack([acts[f"blocks.{i}.{name}"][0] for i in range(L)])

    resid = torch.cat([stack("resid_pre"), acts["resid_final"]], dim=0)
    return Inspection(
        tokens=idx[0],
        logits=logits[0],
        weights=stack("attn.weights"),  # (L, H, T, T)
        resid=resid,  # (L + 1, T, C)
        attn_out=stack("attn_out"),  # (L, T, C)
        mlp_out=stack("mlp_out"),  # (L, T, C)
    )


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Mean entropy (bits) of each head's attention rows, over queries t >= 1.

    Query 0 can only see itself (entropy 0), so it is left out.
    Shapes: weights (..., T, S) -> (...)
    """
    p = weights[..., 1:, :]  # (..., T-1, S)
    ent = -(p * torch.log2(p.clamp_min(1e-12))).sum(-1)  # (..., T-1)
    return ent.mean(-1)


def top_links(
    weights: torch.Tensor, k: int = 10, skip_first: bool = True, min_query: int = 1
):
    """The k strongest query-to-key links over every layer and head.

    Returns dicts {layer, head, query, key, weight, uniform}, strongest first;
    ``uniform`` is 1 / (query + 1), what even attention would give the key.
    Queries before ``min_query`` are skipped: query t has only t + 1 keys, so
    early queries reach high weights by having few choices (query 0 has one).
    Links to key 0 (the usual attention sink) are skipped unless
    skip_first=False.
    Shapes: weights (L, H, T, S)
    """
    w = weights.clone()
    if skip_first:
        w[..., 0] = 0.0
    w[..., : max(1, min_query), :] = 0.0
    values, flat = w.flatten().topk(min(k, w.numel()))
    out = []
    for value, index in zip(values.tolist(), flat.tolist(), strict=True):
        layer, head, query, key = torch.unravel_index(torch.tensor(index), w.shape)
        out.append(
            dict(
                layer=int(layer),
                head=int(head),
                query=int(query),
                key=int(key),
                weight=round(value, 4),
                uniform=round(1 / (int(query) + 1), 4),
            )
        )
    return out


def head_scores(
    weights: torch.Tensor, tokens: torch.Tensor, window: int = 3
) -> dict[str, torch.Tensor]:
    """A score in [0, 1] per head for each pattern in LABELS.

    - previous-token: mean weight on key t-1;
    - first-token: mean weight on key 0 (a "sink");
    - local: weight on the last ``window`` keys (t-window+1..t) above what
      uniform attention would give them, scaled so uniform = 0 and all = 1,
      over queries t >= window;
    - induction: mean weight on keys s whose previous token equals the query's
      token (the token that came *after* an earlier copy of the current one),
      over queries that have such a key; 0 if none do;
    - diffuse: mean entropy over the entropy of uniform attention (1 = uniform).
    Queries t >= 1 only (query 0 sees only itself).
    Shapes: weights (L, H, T, T), tokens (T,) -> each (L, H)
    """
    T = weights.shape[-1]
    t = torch.arange(T)
    w = weights[..., 1:, :]  # (L, H, T-1, T)
    q = t[1:]  # (T-1,) query positions
    distance = q[:, None] - t[None, :]  # (T-1, T)
    near = ((distance >= 0) & (distance < window)).float()  # (T-1, T)
    u = near.sum(-1) / (q + 1)  # (T-1,) the share uniform attention gives them
    far = q >= window  # queries that can see past the window
    excess = ((w * near).sum(-1) - u) / (1 - u).clamp_min(1e-12)  # (L, H, T-1)
    tokens = torch.as_tensor(tokens)
    prev_tok = torch.cat([tokens.new_full((1,), -1), tokens[:-1]])  # (T,)
    match = (prev_tok[None, :] == tokens[1:, None]) & (distance > 0)  # (T-1, T)
    has = match.any(-1)  # (T-1,)
    induction = (
        (w * match.float()).sum(-1)[..., has].mean(-1)
        if has.any()
        else (w.new_zeros(w.shape[:2]))
    )
    ent = -(w * torch.log(w.clamp_min(1e-12))).sum(-1)  # (L, H, T-1)
    uniform = torch.log((q + 1).float())  # (T-1,) entropy of uniform rows
    return {
        "induction": induction,
        "previous-token": w[..., torch.arange(T - 1), q - 1].mean(-1),
        "first-token": w[..., 0].mean(-1),
        "local": excess[..., far].mean(-1),
        "diffuse": (ent / uniform).mean(-1),
    }


@dataclass(frozen=True)
class HeadLabel:
    layer: int
    head: int
    label: str  # one of LABELS
    score: float  # the score behind the label
    scores: dict  # every pattern's score


def uniform_scores(tokens: torch.Tensor) -> dict[str, float]:
    """``head_scores`` of even causal attention on ``tokens``: each pattern's
    baseline, what a head that looks nowhere in particular scores.

    Shapes: tokens (T,)
    """
    T = len(tokens)
    causal = torch.tril(torch.ones(T, T))
    even = (causal / causal.sum(-1, keepdim=True)).expand(1, 1, T, T)
    return {k: float(v) for k, v in head_scores(even, tokens).items()}


def label_heads(
    weights: torch.Tensor,
    tokens: torch.Tensor,
    threshold: float = 0.4,
    relative: bool = False,
) -> list[HeadLabel]:
    """Label each head with the first pattern of LABELS whose score passes
    ``threshold`` (specific patterns first: induction, previous-token,
    first-token, then local); a head that passes none is "diffuse".

    relative=True scores each pattern above its baseline (``uniform_scores``):
    (score - uniform) / (1 - uniform), 0 for even attention, 1 for all weight
    on the pattern, so one threshold means the same for every pattern.
    Shapes: weights (L, H, T, T), tokens (T,)
    """
    scores = head_scores(weights, tokens)
    if relative:
        base = uniform_scores(tokens)
        scores = {
            k: v if k == "diffuse" else (v - base[k]) / max(1 - base[k], 1e-12)
            for k, v in scores.items()
        }
    L, H = weights.shape[:2]
    out = []
    for layer in range(L):
        for head in range(H):
            s = {k: round(float(v[layer, head]), 3) for k, v in scores.items()}
            label = next((k for k in LABELS[:-1] if s[k] >= threshold), "diffuse")
            out.append(HeadLabel(layer, head, label, s[label], s))
    return out


@dataclass(frozen=True)
class LogitLens:
    """What each layer's residual stream predicts (through norm_f and lm_head).

    Row 0 is the embeddings, row i the stream after block i-1, the last row the
    model's own output. Shapes: log_probs (L + 1, T, V); top_ids and top_probs
    (L + 1, T, k).
    """

    log_probs: torch.Tensor
    top_ids: torch.Tensor
    top_probs: torch.Tensor


@torch.no_grad()
def logit_lens(model, resid: torch.Tensor, k: int = 5) -> LogitLens:
    """Apply the final norm and the head to every layer's residual stream.

    Shapes: resid (L + 1, T, C) (``Inspection.resid``) -> LogitLens
    """
    log_probs = model.lm_head(model.norm_f(resid)).log_softmax(-1)  # (L+1, T, V)
    top = log_probs.exp().topk(k, dim=-1)
    return LogitLens(log_probs, top.indices, top.values)


def top_predictions(logits: torch.Tensor, k: int = 5):
    """Per position, the k most likely next tokens: list of [(id, prob), ...].

    Shapes: logits (T, V)
    """
    top = logits.softmax(-1).topk(k, dim=-1)
    return [
        [(int(i), round(float(p), 4)) for i, p in zip(ids, probs, strict=True)]
        for ids, probs in zip(top.indices, top.values, strict=True)
    ]


def contributions(ins: Inspection) -> torch.Tensor:
    """Mean L2 norm of what attention and the MLP add to the stream, per layer,
    and the norm of the stream they add to.

    Shapes: -> (L, 3): columns attention, MLP, residual entering the block
    """
    return torch.stack(
        [
            ins.attn_out.norm(dim=-1).mean(-1),
            ins.mlp_out.norm(dim=-1).mean(-1),
            ins.resid[:-1].norm(dim=-1).mean(-1),
        ],
        dim=-1,
    )


def cosine_similarity(resid: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between every pair of positions, at every layer.

    Shapes: resid (L + 1, T, C) -> (L + 1, T, T)
    """
    unit = resid / resid.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.transpose(-2, -1)


def layer_similarity(resid: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each position's representation between layers,
    averaged over positions: how much each block changes the stream.

    Shapes: resid (L + 1, T, C) -> (L + 1, L + 1)
    """
    unit = resid / resid.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("itc,jtc->ij", unit, unit) / resid.shape[1]


def attention_figure(weights, labels: list[str] | None = None, heads=None):
    """Plotly heatmaps of every head, one slider step per layer, heads side by
    side, every step precomputed (works in the static book).

    ``labels`` are the tokens shown on the axes; ``heads`` the HeadLabels
    (their label and score go in each panel's title).
    Shapes: weights (L, H, T, T)
    """
    from plotly.subplots import make_subplots

    from labkit.viz import heatmap

    L, H, T, _ = weights.shape
    ticks = labels or [str(i) for i in range(T)]
    ticks = [f"{i}:{s}" for i, s in enumerate(ticks)]  # unique axis labels
    fig = make_subplots(rows=1, cols=H, subplot_titles=[f"head {h}" for h in range(H)])
    names = {(x.layer, x.head): f"{x.label} {x.score:.2f}" for x in heads or []}
    for layer in range(L):
        for h in range(H):
            panel = heatmap(
                weights[layer, h].numpy(),
                x=ticks,
                y=ticks,
                zmin=0,
                zmax=1,
                showscale=False,
                visible=layer == 0,
                name=f"L{layer} H{h}",
            )
            fig.add_trace(panel, row=1, col=h + 1)
    steps = []
    for layer in range(L):
        titles = [f"L{layer} H{h} {names.get((layer, h), '')}" for h in range(H)]
        annotations = [
            dict(a.to_plotly_json(), text=t)
            for a, t in zip(fig.layout.annotations, titles, strict=True)
        ]
        steps.append(
            dict(
                method="update",
                label=str(layer),
                args=[
                    {"visible": [i // H == layer for i in range(L * H)]},
                    {"annotations": annotations},
                ],
            )
        )
    fig.update_layout(steps[0]["args"][1])
    fig.update_layout(
        sliders=[
            dict(
                active=0, currentvalue={"prefix": "layer: "}, steps=steps, pad={"t": 40}
            )
        ],
        height=330,
        margin=dict(t=60, b=20, l=20, r=20),
    )
    fig.update_xaxes(showticklabels=False, title_text="key")
    fig.update_yaxes(showticklabels=False, title_text="query")
    return fig
