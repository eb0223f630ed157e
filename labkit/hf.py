"""Loading Hugging Face ``transformers`` GPT-2 and Llama models into labkit, and back.

``HF_NAMES`` is the one table from labkit's parameter names to checkpoint names
(``wte``, ``c_attn``, ...); nothing else in labkit spells a checkpoint name. Each
row is (labkit name, HF name, how), with ``{i}`` for the layer and ``how`` one of:

- "copy": same tensor;
- "conv1d": GPT-2 stores linear weights as Conv1D, (in, out): transpose;
- "q", "k", "v": one third of GPT-2's fused ``c_attn`` (a Conv1D weight or a bias).

``CONFIG_NAMES`` is the one table from GPTConfig fields to HF config attributes
(``n_layers`` is ``n_layer`` in GPT-2, ``num_hidden_layers`` in Llama), read in
both directions; ``LAYOUTS`` lists the fields each family fixes.

Llama's weights need no permutation: labkit's RoPE pairs features the way HF's
Llama does (labkit.positions). ``transformers`` is imported only inside the
functions, so labkit runs without it; with internet, ``from_hf_gpt2("gpt2")``
downloads the real GPT-2.

Built in: the chapter on GPT assembled, counted and checked.
Left out on purpose: other architectures, quantised checkpoints, RoPE scaling.
"""

import torch

from labkit.model import GPT, GPTConfig

_GPT2_LAYER = [
    ("norm_1.weight", "ln_1.weight", "copy"),
    ("norm_1.bias", "ln_1.bias", "copy"),
    *[
        (f"attn.{p}_proj.{w}", f"attn.c_attn.{w}", p)
        for p in "qkv"
        for w in ("weight", "bias")
    ],
    ("attn.o_proj.weight", "attn.c_proj.weight", "conv1d"),
    ("attn.o_proj.bias", "attn.c_proj.bias", "copy"),
    ("norm_2.weight", "ln_2.weight", "copy"),
    ("norm_2.bias", "ln_2.bias", "copy"),
    ("mlp.up_proj.weight", "mlp.c_fc.weight", "conv1d"),
    ("mlp.up_proj.bias", "mlp.c_fc.bias", "copy"),
    ("mlp.down_proj.weight", "mlp.c_proj.weight", "conv1d"),
    ("mlp.down_proj.bias", "mlp.c_proj.bias", "copy"),
]
_LLAMA_LAYER = [
    ("norm_1.weight", "input_layernorm.weight", "copy"),
    *[(f"attn.{p}_proj.weight", f"self_attn.{p}_proj.weight", "copy") for p in "qkvo"],
    ("norm_2.weight", "post_attention_layernorm.weight", "copy"),
    *[
        (f"mlp.{p}_proj.weight", f"mlp.{p}_proj.weight", "copy")
        for p in ("gate", "up", "down")
    ],
]
HF_NAMES = {
    "gpt2": [
        ("tok_emb.weight", "transformer.wte.weight", "copy"),
        ("pos_emb.weight", "transformer.wpe.weight", "copy"),
        ("norm_f.weight", "transformer.ln_f.weight", "copy"),
        ("norm_f.bias", "transformer.ln_f.bias", "copy"),
        ("lm_head.weight", "lm_head.weight", "copy"),
        *[
            (f"blocks.{{i}}.{a}", f"transformer.h.{{i}}.{b}", how)
            for a, b, how in _GPT2_LAYER
        ],
    ],
    "llama": [
        ("tok_emb.weight", "model.embed_tokens.weight", "copy"),
        ("norm_f.weight", "model.norm.weight", "copy"),
        ("lm_head.weight", "lm_head.weight", "copy"),
        *[
            (f"blocks.{{i}}.{a}", f"model.layers.{{i}}.{b}", how)
            for a, b, how in _LLAMA_LAYER
        ],
    ],
}
# GPTConfig field -> the HF config attribute that holds it, per family; read
# by the loaders (HF -> labkit) and the exporters (labkit -> HF) alike
CONFIG_NAMES = {
    "gpt2": {
        "vocab_size": "vocab_size",
        "context_len": "n_positions",
        "n_layers": "n_layer",
        "n_heads": "n_head",
        "d_model": "n_embd",
        "d_mlp": "n_inner",  # None in both: 4 * d_model
        "norm_eps": "layer_norm_epsilon",
        "tie_weights": "tie_word_embeddings",
    },
    "llama": {
        "vocab_size": "vocab_size",
        "context_len": "max_position_embeddings",
        "n_layers": "num_hidden_layers",
        "n_heads": "num_attention_heads",
        "n_kv_heads": "num_key_value_heads",
        "d_model": "hidden_size",
        "d_mlp": "intermediate_size",
        "norm_eps": "rms_norm_eps",
        "tie_weights": "tie_word_embeddings",
    },
}
# the fields each family fixes: set on load, required on export
LAYOUTS = {
    "gpt2": dict(pos="learned", norm="layernorm", bias=True, prenorm=True),
    "llama": dict(pos="rope", norm="rmsnorm", mlp="swiglu", bias=False, prenorm=True),
}
# GPT-2's activation_function -> labkit's mlp; the first name of each is exported
_GPT2_ACTS = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu": "gelu",
    "relu": "relu",
}


def _from_hf_config(family: str, hf_cfg, **fields) -> GPTConfig:
    names = CONFIG_NAMES[family]
    sizes = {ours: getattr(hf_cfg, theirs) for ours, theirs in names.items()}
    return GPTConfig(**sizes, **LAYOUTS[family], **fields)


def _to_hf_config(family: str, cfg: GPTConfig) -> dict:
    """The HF config's keyword arguments for cfg's sizes (written out)."""
    cfg = cfg.resolved()
    return {theirs: getattr(cfg, ours) for ours, theirs in CONFIG_NAMES[family].items()}


def _rows(family: str, n_layers: int):
    for ours, theirs, how in HF_NAMES[family]:
        layers = range(n_layers) if "{i}" in ours else [None]
        for i in layers:
            yield ours.format(i=i), theirs.format(i=i), how


def _import(family: str, hf_sd: dict, model: GPT) -> GPT:
    """Copy an HF state dict into ``model`` following the table."""
    ours_sd = model.state_dict()
    done = set()
    with torch.no_grad():
        for ours, theirs, how in _rows(family, model.cfg.n_layers):
            if ours not in ours_sd or ours in done:
                continue  # e.g. biases of a bias-free model
            if theirs not in hf_sd:
                raise KeyError(f"checkpoint has no {theirs!r} (needed for {ours!r})")
            t = hf_sd[theirs]
            if how == "conv1d":
                t = t.T
            elif how in ("q", "k", "v"):
                t = t.chunk(3, dim=-1)["qkv".index(how)]
                t = t.T if t.dim() == 2 else t
            ours_sd[ours].copy_(t)
            done.add(ours)
    missing = set(ours_sd) - done
    if missing:
        raise KeyError(f"no checkpoint tensor for labkit parameters {sorted(missing)}")
    return model


def hf_state_dict(family: str, tensors: dict, n_layers: int) -> dict:
    """Rename labkit tensors (parameters, or their gradients) to HF names.

    family is "gpt2" or "llama"; GPT-2's fused c_attn is rebuilt from q, k, v.
    """
    sd, out, fused = tensors, {}, {}
    for ours, theirs, how in _rows(family, n_layers):
        if ours not in sd:
            continue
        t = sd[ours]
        if how in ("q", "k", "v"):
            fused.setdefault(theirs, {})[how] = t.T if t.dim() == 2 else t
        else:
            out[theirs] = t.T.contiguous() if how == "conv1d" else t
    for theirs, parts in fused.items():
        out[theirs] = torch.cat([parts[p] for p in "qkv"], dim=-1)
    return out


def gpt2_config(hf_cfg) -> GPTConfig:
    """GPTConfig from a transformers GPT2Config; unsupported options raise."""
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if getattr(hf_cfg, flag, False):
            raise ValueError(f"GPT2Config.{flag}=True is not supported by labkit")
    if not getattr(hf_cfg, "scale_attn_weights", True):
        raise ValueError("GPT2Config.scale_attn_weights=False is not supported")
    act = hf_cfg.activation_function
    if act not in _GPT2_ACTS:
        raise ValueError(
            f"GPT2Config.activation_function={act!r} is not one of {tuple(_GPT2_ACTS)}"
        )
    return _from_hf_config("gpt2", hf_cfg, mlp=_GPT2_ACTS[act])


def llama_config(hf_cfg) -> GPTConfig:
    """GPTConfig from a transformers LlamaConfig; unsupported options raise."""
    rope = getattr(hf_cfg, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(hf_cfg, "rope_theta", 10000.0))
    problems = []
    if rope.get("rope_type", "default") != "default":
        problems.append(f"rope_type={rope['rope_type']!r} (only 'default')")
    if hf_cfg.hidden_act != "silu":
        problems.append(f"hidden_act={hf_cfg.hidden_act!r} (only 'silu')")
    if hf_cfg.attention_bias or getattr(hf_cfg, "mlp_bias", False):
        problems.append("attention_bias/mlp_bias=True (labkit's Llama has none)")
    head_dim = getattr(hf_cfg, "head_dim", None)
    if head_dim and head_dim * hf_cfg.num_attention_heads != hf_cfg.hidden_size:
        problems.append(f"head_dim={head_dim} != hidden_size / num_attention_heads")
    if problems:
        raise ValueError("LlamaConfig not supported: " + "; ".join(problems))
    return _from_hf_config("llama", hf_cfg, rope_theta=float(theta))


def _hf_model(model_or_name, cls_name: str):
    if not isinstance(model_or_name, str):
        return model_or_name
    import transformers

    return getattr(transformers, cls_name).from_pretrained(model_or_name)


def _empty_gpt(cfg: GPTConfig) -> GPT:
    """GPT(cfg) with memory for its weights but none drawn: the import fills
    them all. Built on the meta device, unless it has buffers (RoPE's
    frequencies, ALiBi's slopes), which are computed when it is built."""
    with torch.device("meta"):
        model = GPT(cfg)
    if any(True for _ in model.buffers()):
        return GPT(cfg)
    model = model.to_empty(device="cpu")
    if cfg.tie_weights:  # to_empty gives each module its own new tensor
        model.lm_head.weight = model.tok_emb.weight
    return model


def _target(cfg: GPTConfig, into: GPT | None) -> GPT:
    """A new GPT(cfg), or ``into`` when it has the same resolved config."""
    if into is None:
        return _empty_gpt(cfg)
    if into.cfg.resolved() != cfg.resolved():
        raise ValueError(
            f"into= holds a model of another config: {into.cfg.resolved()} "
            f"is not the checkpoint's {cfg.resolved()}"
        )
    return into


def from_hf_gpt2(model_or_name, *, into: GPT | None = None) -> GPT:
    """A labkit GPT with the weights of a transformers GPT2LMHeadModel.

    Pass the model, or a name/path for GPT2LMHeadModel.from_pretrained ("gpt2"
    downloads the real GPT-2 when online). ``into``: copy the weights into
    this GPT (of the same config) instead of building a new one.
    """
    hf = _hf_model(model_or_name, "GPT2LMHeadModel")
    model = _target(gpt2_config(hf.config), into)
    return _import("gpt2", hf.state_dict(), model)


def from_hf_llama(model_or_name, *, into: GPT | None = None) -> GPT:
    """A labkit GPT with the weights of a transformers LlamaForCausalLM.

    ``into``: copy the weights into this GPT (of the same config).
    """
    hf = _hf_model(model_or_name, "LlamaForCausalLM")
    model = _target(llama_config(hf.config), into)
    return _import("llama", hf.state_dict(), model)


def _require(cfg: GPTConfig, family: str) -> None:
    """Refuse a config whose layout the HF family cannot hold, naming each field."""
    wanted = dict(LAYOUTS[family])
    if family == "gpt2":  # no grouped-query attention, one of GPT-2's activations
        wanted["n_kv_heads"] = cfg.n_heads
    wrong = [
        f"{k}={getattr(cfg, k)!r} (needs {v!r})"
        for k, v in wanted.items()
        if getattr(cfg, k) != v
    ]
    if family == "gpt2" and cfg.mlp not in _GPT2_ACTS.values():
        wrong.append(
            f"mlp={cfg.mlp!r} (needs one of {sorted(set(_GPT2_ACTS.values()))})"
        )
    if wrong:
        raise ValueError(f"cannot export to HF {family}: " + "; ".join(wrong))


def to_hf_gpt2(model: GPT):
    """A transformers GPT2LMHeadModel with this model's weights (GPT-2 layout only)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = model.cfg.resolved()
    _require(cfg, "gpt2")
    activation = next(k for k, v in _GPT2_ACTS.items() if v == cfg.mlp)
    hf_cfg = GPT2Config(
        **_to_hf_config("gpt2", cfg),
        activation_function=activation,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    hf = GPT2LMHeadModel(hf_cfg)
    sd = hf_state_dict("gpt2", model.state_dict(), cfg.n_layers)
    sd.setdefault("lm_head.weight", sd["transformer.wte.weight"])
    hf.load_state_dict(sd, strict=True)
    return hf.eval()


def to_hf_llama(model: GPT):
    """A transformers LlamaForCausalLM with this model's weights (Llama layout only)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = model.cfg.resolved()
    _require(cfg, "llama")
    hf_cfg = LlamaConfig(
        **_to_hf_config("llama", cfg),
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
    )
    hf = LlamaForCausalLM(hf_cfg)
    sd = hf_state_dict("llama", model.state_dict(), cfg.n_layers)
    sd.setdefault("lm_head.weight", sd["model.embed_tokens.weight"])
    hf.load_state_dict(sd, strict=True)
    return hf.eval()
