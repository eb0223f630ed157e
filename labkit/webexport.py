"""Export a trained GPT for a web page: files a browser reads directly.

``labkit export-web RUN_FOLDER -o DIR`` (labkit.cli) and ``export_web(model,
tokenizer, out_dir)`` write a folder that labkit/web/labkit-live.js runs in
the page, with no kernel and no network:

    model.json             format, config (GPTConfig, sizes written out),
                           tokenizer, dtype, parameter count, where it came from
    model.safetensors      the weights, float16 (default) or float32, under
                           labkit's own names; a tied head is stored once
    reference.safetensors  labkit's logits, computed on the weights as stored
                           (float16-rounded), for fixed prompts: every prompt
                           position, every step of a greedy continuation, the
                           attention weights of the first prompt; the browser
                           check (booktools/live_check.py) holds the page to them
    bundle.js              model.json and the weights as one script, for a page
                           opened as a file:// (browsers refuse fetch() there)
    index.html, labkit-live.js   with ``page=True`` (the CLI): a page that runs
                           the model; open it, or serve the folder over HTTP

The tokenizer goes into model.json whole: characters (CharTokenizer), or
byte-level BPE (Tokenizer) as its vocabulary (hex bytes per id), its merges
as id triples in rank order, its special tokens, and its pre-tokenisation
pattern rewritten for JavaScript (``js_pattern``).

Built in: the intro page, chapters 12 and 13 (labkit.viz.live_model).
Left out on purpose: int8 weights (float16 keeps a 0.8M-parameter model at
1.7 MB) and patterns JavaScript cannot run as Python does (GPT-4's
possessive quantifiers): exporting such a tokenizer is an error naming it.
"""

import base64
import dataclasses
import hashlib
import html
import json
import shutil
from pathlib import Path

import regex
import torch
from safetensors.torch import save_file

from labkit.model import GPT, trace
from labkit.sampling import generate
from labkit.tokenizer import CharTokenizer, Tokenizer

FORMAT, VERSION = "labkit.web", 1
DTYPES = {"float16": torch.float16, "float32": torch.float32}
TOLERANCE = {"float16": 1e-3, "float32": 1e-4}  # max |logit difference| allowed
SCRIPT = Path(__file__).parent / "web" / "labkit-live.js"
PROMPTS = ("Once upon a time", "One day, Ben")  # then one that fills the context
GREEDY_TOKENS = 100  # greedy steps held to labkit's after each short prompt
LONG_TOKENS = 12  # after the long prompt: steps that cross the context


def _class_items(name: str) -> str:
    """The code points Python's ``regex`` puts in ``\\s``, ``\\p{L}`` or
    ``\\p{N}``, as the inside of a JavaScript character class."""
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    points = sorted({ord(ch) for ch in regex.findall(name, text)})
    ranges, start = [], points[0]
    for prev, cur in zip(points, points[1:] + [None], strict=True):
        if cur != prev + 1:
            ranges.append((start, prev))
            start = cur
    esc = lambda c: f"\\u{{{c:x}}}"  # noqa: E731
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


_CLASSES: dict[str, str] = {}
_ESCAPES = ("\\s", "\\S", "\\p{L}", "\\p{N}")


def js_pattern(pattern: str) -> str:
    """``pattern`` as a JavaScript regular expression (flags "gu") that cuts
    text exactly as Python's ``regex`` does.

    Unicode classes are written out from Python's own tables (``\\s`` differs
    between the two: U+0085 and U+FEFF; ``\\p{L}`` with the Unicode version);
    the rest of GPT-2's pattern means the same in both. Raises ValueError for
    what JavaScript lacks or reads otherwise (possessive quantifiers, inline
    flags, other escapes), naming it.
    Example: js_pattern(r" ?\\p{N}+") -> " ?[\\u{30}-\\u{39}...]+"
    """
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        two = pattern[i : i + 2]
        if ch == "\\":
            esc = next((e for e in _ESCAPES if pattern.startswith(e, i)), None)
            if esc is None and pattern[i + 1 : i + 2].isalnum():
                raise ValueError(f"pattern escape {two!r} at {i} is not supported")
            if esc is None:  # an escaped punctuation character: the same in JS
                out.append(two)
                i += 2
                continue
            if esc == "\\S" and in_class:
                raise ValueError(f"pattern: \\S inside a character class at {i}")
            key = "\\s" if esc == "\\S" else esc
            if key not in _CLASSES:
                _CLASSES[key] = _class_items(key)
            items = _CLASSES[key]
            negate = "^" if esc == "\\S" else ""
            out.append(items if in_class else f"[{negate}{items}]")
            i += len(esc)
            continue
        if two in ("++", "?+", "*+", "}+") or pattern.startswith("(?i", i):
            raise ValueError(
                f"pattern: {pattern[i : i + 3]!r} at {i} (possessive quantifier or "
                "inline flag) has no JavaScript equivalent"
            )
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


def tokenizer_spec(tokenizer) -> dict:
    """The tokenizer as model.json holds it (see the module docstring)."""
    if isinstance(tokenizer, CharTokenizer):
        return {"kind": "char", "chars": tokenizer.chars}
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(
            f"cannot export a {type(tokenizer).__name__}: labkit's Tokenizer "
            "(bytes, BPE) or CharTokenizer"
        )
    ids: dict[bytes, int] = {}
    for i, token in sorted(tokenizer.vocab.items()):
        ids.setdefault(token, i)
    return {
        "kind": "bpe",
        "vocab": [tokenizer.vocab[i].hex() for i in range(tokenizer.vocab_size)],
        "byte_ids": [ids[bytes([b])] for b in range(256)],
        "merges": [[ids[a], ids[b], ids[a + b]] for a, b in tokenizer.merges],
        "special_tokens": dict(tokenizer.special_tokens),
        "pattern": tokenizer.pattern,
        "pattern_js": js_pattern(tokenizer.pattern) if tokenizer.merges else None,
    }


def stored_weights(model: GPT, dtype: str) -> dict[str, torch.Tensor]:
    """The state dict in ``dtype``, contiguous, a tied head left out."""
    state = model.state_dict()
    if model.cfg.tie_weights:
        state.pop("lm_head.weight")
    return {k: v.detach().to(DTYPES[dtype]).contiguous() for k, v in state.items()}


def _as_stored(model: GPT, weights: dict[str, torch.Tensor]) -> GPT:
    """A float32 copy of ``model`` whose weights are exactly those stored."""
    copy = GPT(model.cfg).eval()
    copy.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    return copy


def reference_prompts(tokenizer, context_len: int) -> list[tuple[str, int]]:
    """(prompt, greedy steps): two short prompts with GREEDY_TOKENS steps, and
    one of context_len - 4 tokens whose LONG_TOKENS steps cross the context
    (where labkit crops the window and stops using the cache). A character
    tokenizer keeps only the characters it knows."""
    known = set(tokenizer.chars) if isinstance(tokenizer, CharTokenizer) else None
    keep = lambda s: "".join(c for c in s if known is None or c in known)  # noqa: E731
    short = [keep(p) or tokenizer.decode([0]) for p in PROMPTS]
    long_text = keep("The cat sat on the mat. " * 200) or tokenizer.decode([0]) * 999
    n = max(1, context_len - 4)
    long_prompt = tokenizer.decode(tokenizer.encode(long_text)[:n])
    return [(p, GREEDY_TOKENS) for p in short] + [(long_prompt, LONG_TOKENS)]


@torch.no_grad()
def reference_tensors(model: GPT, tokenizer) -> tuple[dict, list[str]]:
    """labkit's numbers the page must reproduce, and the prompts' texts.

    For prompt i: ``i.ids`` (T,), ``i.logits`` (T, V) at every position,
    ``i.greedy`` (N,) the tokens of ``generate(temperature=0)`` (KV cache on,
    as the page decodes), ``i.step_logits`` (N, V) the logits each greedy step
    chose from (the cropped window run whole); ``0.attention`` (L, H, T, T).
    """
    ctx = model.cfg.context_len
    out, texts = {}, []
    for i, (text, n) in enumerate(reference_prompts(tokenizer, ctx)):
        ids = tokenizer.encode(text)[-ctx:]
        texts.append(text)
        with trace(model) as acts:
            logits = model(torch.tensor([ids]), need_weights=i == 0)[0]  # (T, V)
        greedy = generate(model, [ids], n, temperature=0)[0]
        seq, steps = list(ids), []
        for token in greedy:
            steps.append(model(torch.tensor([seq[-ctx:]]))[0, -1])  # (V,)
            seq.append(token)
        out[f"{i}.ids"] = torch.tensor(ids, dtype=torch.int32)
        out[f"{i}.logits"] = logits.float().contiguous()
        out[f"{i}.greedy"] = torch.tensor(greedy, dtype=torch.int32)
        out[f"{i}.step_logits"] = torch.stack(steps).float().contiguous()
        if i == 0:
            maps = [
                acts[f"blocks.{b}.attn.weights"][0] for b in range(model.cfg.n_layers)
            ]
            out["0.attention"] = torch.stack(maps).float().contiguous()  # (L, H, T, T)
    return out, texts


def export_web(
    model: GPT,
    tokenizer,
    out_dir: str | Path,
    *,
    name: str = "model",
    description: str | None = None,
    dtype: str = "float16",
    source: dict | None = None,
    reference: bool = True,
    bundle: bool = True,
    page: bool = False,
) -> dict:
    """Write ``model`` and ``tokenizer`` into ``out_dir`` for the page; return
    model.json's content. See the module docstring for the files.

    reference=False skips reference.safetensors (JupyterLab needs none),
    bundle=False skips bundle.js (served pages need none), page=True adds
    index.html and labkit-live.js. Raises ValueError naming the problem
    (a dtype, a tokenizer the model cannot read, a pattern JavaScript lacks).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not one of {list(DTYPES)}")
    if tokenizer.vocab_size > model.cfg.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} tokens, the model only "
            f"{model.cfg.vocab_size}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = stored_weights(model, dtype)
    save_file(weights, str(out / "model.safetensors"))
    blob = (out / "model.safetensors").read_bytes()
    spec = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "description": description or name,
        "config": dataclasses.asdict(model.cfg.resolved()),
        "dtype": dtype,
        "n_params": sum(v.numel() for v in weights.values()),
        "weights": "model.safetensors",
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "tokenizer": tokenizer_spec(tokenizer),
        "source": source or {},
        "tolerance": TOLERANCE[dtype],
    }
    if reference:
        tensors, texts = reference_tensors(_as_stored(model, weights), tokenizer)
        meta = {"prompts": json.dumps(texts), "weights_sha256": spec["weights_sha256"]}
        save_file(tensors, str(out / "reference.safetensors"), metadata=meta)
        spec["reference"] = "reference.safetensors"
    text = json.dumps(spec, ensure_ascii=False, indent=1) + "\n"
    (out / "model.json").write_text(text, encoding="utf-8")
    if bundle:
        payload = json.dumps({"spec": spec, "weights": base64.b64encode(blob).decode()})
        (out / "bundle.js").write_text(
            "// model.json and model.safetensors (base64) for a page opened as a "
            "file: see labkit/webexport.py\n(window.LabkitLiveBundles = "
            "window.LabkitLiveBundles || {})[document.currentScript.src] = "
            f"{payload};\n",
            encoding="utf-8",
        )
    if page:
        shutil.copyfile(SCRIPT, out / "labkit-live.js")
        (out / "index.html").write_text(page_html(spec), encoding="utf-8")
    for name in ("model.safetensors", "reference.safetensors"):
        if (out / name).exists():  # safetensors writes 0600; a web server reads
            (out / name).chmod(0o644)
    return spec


def page_html(spec: dict) -> str:
    """A page that runs the exported model beside it (export_web(page=True))."""
    title = html.escape(f"{spec['name']}: live model")
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><link rel='icon' href='data:,'>"
        "<script src='labkit-live.js' defer></script>"
        "</head>\n<body style='max-width: 60em; margin: 2em auto; "
        "font-family: sans-serif'>\n"
        f"<h1>{title}</h1>\n"
        "<div class='labkit-live' data-mount='auto' data-src='./'>"
        "<p>This page runs the model with JavaScript.</p></div>\n</body></html>\n"
    )


def export_run(run: str | Path, out_dir: str | Path, **kwargs) -> dict:
    """Export the newest checkpoint of a run folder made by ``labkit train``."""
    from labkit.train.checkpoint import list_checkpoints
    from labkit.train.runfolder import load_run

    run = Path(run)
    model, tokenizer = load_run(run)
    ckpt = list_checkpoints(run / "checkpoints")[-1]
    kwargs.setdefault("name", run.resolve().name)
    kwargs.setdefault("description", f"your run {run.name} ({ckpt.name})")
    source = {"kind": "run", "path": str(run), "checkpoint": ckpt.name}
    return export_web(model.eval(), tokenizer, out_dir, source=source, **kwargs)


def export_small(out_dir: str | Path, **kwargs) -> dict:
    """Export labkit's small model (recipes.load_small_model: trained and
    cached on first use)."""
    from labkit.recipes import load_small_model, recipe_name

    model, tokenizer = load_small_model()
    kwargs.setdefault("name", "small")
    kwargs.setdefault(
        "description", "labkit's small model (the stories, 600 steps; chapter 13)"
    )
    source = {"kind": "recipe", "recipe": recipe_name()}
    return export_web(model, tokenizer, out_dir, source=source, **kwargs)


def export_sft(out_dir: str | Path, **kwargs) -> dict:
    """Export the small model instruction-tuned (recipes.load_sft_model:
    trained and cached on first use), with its chat tokenizer."""
    from labkit.recipes import load_sft_model, sft_recipe_name

    model, tokenizer = load_sft_model()
    kwargs.setdefault("name", "sft")
    kwargs.setdefault(
        "description", "labkit's small model instruction-tuned (chapter 16)"
    )
    source = {"kind": "recipe", "recipe": sft_recipe_name()}
    return export_web(model, tokenizer, out_dir, source=source, **kwargs)


def export_source(source: str, out_dir: str | Path, base: Path = Path(), **kw):
    """Export by name: "small" (labkit's small model), "sft" (that model
    instruction-tuned) or "run:PATH" (a run folder, PATH relative to
    ``base``). Used by the book build."""
    if source == "small":
        return export_small(out_dir, **kw)
    if source == "sft":
        return export_sft(out_dir, **kw)
    if source.startswith("run:"):
        return export_run(base / source[4:], out_dir, **kw)
    raise ValueError(
        f"live model source {source!r} is not 'small', 'sft' or 'run:PATH'"
    )
