/*
 * labkit-live.js: a labkit GPT running in the page, in plain JavaScript.
 *
 * The model a reader trains with labkit, exported by `labkit export-web`
 * (labkit/webexport.py), runs here with no kernel, no library and no
 * network beyond its own files. Top to bottom:
 *
 *   1. reading the export: model.json (config and tokenizer) and
 *      model.safetensors (weights, float16 or float32);
 *   2. tokenizers as labkit's: bytes, byte-level BPE (GPT-2's regular
 *      expression, merges by rank, special tokens) and characters;
 *   3. the forward pass over typed arrays, step for step as labkit/model.py:
 *      token embeddings; learned, sinusoidal, rotary (RoPE) or ALiBi
 *      positions; LayerNorm or RMSNorm; causal multi-head attention with
 *      grouped-query heads and a KV cache; GELU, ReLU or gated (SwiGLU...)
 *      MLPs; pre- or post-norm blocks; a tied or untied head;
 *   4. from logits to a token as labkit.sampling does: temperature, top-k,
 *      top-p, greedy; a seeded random generator; the decoding loop, which
 *      crops the window past the context exactly as labkit does;
 *   5. loading: fetch() over HTTP, or a script bundle for a page opened as
 *      a file (browsers refuse fetch() there);
 *   6. the component: a prompt box, the tokens as coloured pieces, the top-20
 *      next-token bars with temperature, top-k and top-p controls, sampling
 *      with a seed and greedy decoding, and the attention maps of every
 *      layer and head for the prompt. Every number it shows is computed here.
 *
 * The book's site check (booktools/live_check.py) feeds fixed prompts to this
 * code in a real browser and compares its logits with labkit's.
 *
 * Shapes are written as in labkit: T new positions, S keys, C = d_model,
 * H heads, K kv heads, D = d_head, F = d_mlp, V = vocab_size. A (T, C) array
 * is a Float32Array of T * C numbers, row t at [t * C, (t + 1) * C).
 */
(function () {
  "use strict";
  if (window.LabkitLive) return; // loaded twice (two outputs): keep the first

  const VERSION = 1; // the export format this file reads (webexport.FORMAT)
  const SCRIPT_URL = document.currentScript
    ? document.currentScript.src
    : document.baseURI;

  // ---------------------------------------------------------------------------
  // 1. Reading the export
  // ---------------------------------------------------------------------------

  let HALF = null; // float16 bit pattern -> float32 value, built on first use

  function halfTable() {
    if (HALF) return HALF;
    HALF = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 31;
      const frac = h & 1023;
      if (exp === 0) HALF[h] = sign * frac * 2 ** -24; // subnormal
      else if (exp === 31) HALF[h] = frac ? NaN : sign * Infinity;
      else HALF[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
    }
    return HALF;
  }

  function typedArray(dtype, bytes, name) {
    if (dtype === "F32") return new Float32Array(bytes);
    if (dtype === "I32") return new Int32Array(bytes);
    if (dtype === "F16") {
      const bits = new Uint16Array(bytes);
      const table = halfTable();
      const out = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
      return out;
    }
    throw new Error(`tensor ${name}: dtype ${dtype} is not F16, F32 or I32`);
  }

  /**
   * Parse a safetensors file: an 8-byte little-endian header length, a JSON
   * header {name: {dtype, shape, data_offsets}}, then the raw tensors.
   * Returns {tensors: {name: {shape, data}}, metadata}; float16 becomes
   * Float32Array (all arithmetic here is in float32 storage).
   */
  function readSafetensors(buffer, what) {
    if (buffer.byteLength < 8) throw new Error(`${what} is too short`);
    const view = new DataView(buffer);
    const n = Number(view.getBigUint64(0, true));
    if (n > buffer.byteLength - 8) {
      throw new Error(`${what}: header of ${n} bytes in a file of ${buffer.byteLength}`);
    }
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
    const tensors = {};
    for (const [name, info] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const [start, end] = info.data_offsets;
      // slice() copies: every typed array then starts at an aligned offset
      const bytes = buffer.slice(8 + n + start, 8 + n + end);
      tensors[name] = { shape: info.shape, data: typedArray(info.dtype, bytes, name) };
    }
    return { tensors, metadata: header.__metadata__ || {} };
  }

  // ---------------------------------------------------------------------------
  // 2. Tokenizers (labkit/tokenizer/tokenizer.py and chars.py)
  // ---------------------------------------------------------------------------

  const ENCODER = new TextEncoder();
  const STRICT = new TextDecoder("utf-8", { fatal: true });
  const LENIENT = new TextDecoder("utf-8"); // bad bytes -> U+FFFD, as errors="replace"

  function hexBytes(hex) {
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }

  function escapeRegex(s) {
    return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
  }

  /** A token's text for display: its bytes as UTF-8, or \xNN where they are
   *  not (one byte of a multi-byte character). */
  function bytesText(bytes) {
    try {
      return STRICT.decode(bytes);
    } catch (e) {
      let out = "";
      for (const b of bytes) {
        out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "\\x" + b.toString(16).padStart(2, "0");
      }
      return out;
    }
  }

  /**
   * Byte-level BPE, as labkit's Tokenizer: the text is cut on special tokens
   * (longest first), then into pre-tokens by the export's regular expression
   * (GPT-2's, its character classes written out by webexport so that they
   * match Python's `regex` module exactly); each pre-token's bytes are merged
   * by rank, every occurrence of the lowest-ranked pair present at a time,
   * left to right (merging.apply_merges). With no merges it is the plain byte
   * tokenizer and the pattern plays no part.
   */
  class BpeTokenizer {
    constructor(spec) {
      this.kind = "bpe";
      this.vocab = spec.vocab.map(hexBytes); // id -> bytes
      this.vocabSize = this.vocab.length;
      this.byteIds = spec.byte_ids; // byte value -> id
      this.ranks = new Map(); // a * V + b -> [rank, merged id]
      spec.merges.forEach(([a, b, id], rank) => this.ranks.set(a * this.vocabSize + b, [rank, id]));
      this.special = spec.special_tokens || {};
      const names = Object.keys(this.special).sort((x, y) => y.length - x.length);
      this.specialRe = names.length ? new RegExp(names.map(escapeRegex).join("|"), "gu") : null;
      this.pattern = spec.merges.length ? new RegExp(spec.pattern_js, "gu") : null;
      this.cache = new Map(); // pre-token -> ids
    }

    mergeWord(ids) {
      const V = this.vocabSize;
      while (ids.length > 1) {
        let best = null;
        let pair = 0;
        for (let i = 0; i + 1 < ids.length; i++) {
          const found = this.ranks.get(ids[i] * V + ids[i + 1]);
          if (found && (best === null || found[0] < best[0])) {
            best = found;
            pair = ids[i] * V + ids[i + 1];
          }
        }
        if (best === null) break;
        const out = [];
        for (let i = 0; i < ids.length; i++) {
          if (i + 1 < ids.length && ids[i] * V + ids[i + 1] === pair) {
            out.push(best[1]);
            i++;
          } else out.push(ids[i]);
        }
        ids = out;
      }
      return ids;
    }

    encodeOrdinary(text, out) {
      const words = this.pattern ? text.match(this.pattern) || [] : [text];
      for (const word of words) {
        let ids = this.cache.get(word);
        if (ids === undefined) {
          ids = Array.from(ENCODER.encode(word), (b) => this.byteIds[b]);
          if (this.pattern) ids = this.mergeWord(ids);
          if (word.length <= 256) this.cache.set(word, ids);
        }
        for (const id of ids) out.push(id);
      }
    }

    /** {ids, pieces}: pieces are one per token ({id, text}). */
    encode(text) {
      const ids = [];
      let start = 0;
      if (this.specialRe) {
        for (const m of text.matchAll(this.specialRe)) {
          if (m.index > start) this.encodeOrdinary(text.slice(start, m.index), ids);
          ids.push(this.special[m[0]]);
          start = m.index + m[0].length;
        }
      }
      if (start < text.length) this.encodeOrdinary(text.slice(start), ids);
      return { ids, pieces: ids.map((id) => ({ id, text: this.tokenText(id) })) };
    }

    decodeBytes(ids) {
      const parts = ids.map((id) => this.vocab[id]);
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    }

    decode(ids) {
      return LENIENT.decode(this.decodeBytes(ids));
    }

    tokenText(id) {
      return bytesText(this.vocab[id]);
    }
  }

  /**
   * Characters, as labkit's CharTokenizer; a character outside the alphabet
   * is not an error here: it becomes a piece with id null, left out of the
   * ids the model reads, and the component says so.
   */
  class CharTokenizer {
    constructor(spec) {
      this.kind = "char";
      this.chars = Array.from(spec.chars);
      this.vocabSize = this.chars.length;
      this.ids = new Map(this.chars.map((ch, i) => [ch, i]));
    }

    encode(text) {
      const ids = [];
      const pieces = [];
      for (const ch of text) {
        const id = this.ids.get(ch);
        if (id === undefined) pieces.push({ id: null, text: ch, unknown: true });
        else {
          ids.push(id);
          pieces.push({ id, text: ch });
        }
      }
      return { ids, pieces };
    }

    decode(ids) {
      return ids.map((i) => this.chars[i]).join("");
    }

    tokenText(id) {
      return this.chars[id];
    }
  }

  function makeTokenizer(spec) {
    if (spec.kind === "bpe") return new BpeTokenizer(spec);
    if (spec.kind === "char") return new CharTokenizer(spec);
    throw new Error(`tokenizer kind ${spec.kind} is not bpe or char`);
  }

  // ---------------------------------------------------------------------------
  // 3. The forward pass (labkit/model.py, attention.py, positions.py, norms.py,
  //    mlp.py)
  // ---------------------------------------------------------------------------

  const f32 = Math.fround; // one float32 rounding, where torch rounds

  /** y = x W^T + b for T rows: W is (m, n) as torch.nn.Linear keeps it.
   *  Shapes: x (T, n) -> (T, m). Sums run in double precision. The loops
   *  take four rows of W and two positions at a time: eight sums from six
   *  reads per step, which is what makes plain JavaScript fast enough. */
  function linear(x, T, n, W, b, m) {
    const out = new Float32Array(T * m);
    let o = 0;
    for (; o + 3 < m; o += 4) {
      const r0 = o * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      let t = 0;
      for (; t + 1 < T; t += 2) { // two positions
        const xa = t * n, xb = xa + n;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0, c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (let i = 0; i < n; i++) {
          const u = x[xa + i], v = x[xb + i];
          const w0 = W[r0 + i], w1 = W[r1 + i], w2 = W[r2 + i], w3 = W[r3 + i];
          a0 += w0 * u; a1 += w1 * u; a2 += w2 * u; a3 += w3 * u;
          c0 += w0 * v; c1 += w1 * v; c2 += w2 * v; c3 += w3 * v;
        }
        const ta = t * m + o, tb = ta + m;
        out[ta] = a0; out[ta + 1] = a1; out[ta + 2] = a2; out[ta + 3] = a3;
        out[tb] = c0; out[tb + 1] = c1; out[tb + 2] = c2; out[tb + 3] = c3;
      }
      for (; t < T; t++) { // the last position (the only one with a cache)
        const xo = t * n;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let i = 0; i < n; i++) {
          const u = x[xo + i];
          s0 += W[r0 + i] * u; s1 += W[r1 + i] * u; s2 += W[r2 + i] * u; s3 += W[r3 + i] * u;
        }
        const to = t * m + o;
        out[to] = s0; out[to + 1] = s1; out[to + 2] = s2; out[to + 3] = s3;
      }
    }
    for (; o < m; o++) { // rows left over when m is not a multiple of 4
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += W[o * n + i] * x[t * n + i];
        out[t * m + o] = s;
      }
    }
    if (b) for (let t = 0; t < T; t++) for (let j = 0; j < m; j++) out[t * m + j] += b[j];
    return out;
  }

  /** LayerNorm (biased variance, as torch) or RMSNorm of each row.
   *  Shapes: x (T, C) -> (T, C) */
  function norm(kind, x, T, C, p, eps) {
    const out = new Float32Array(T * C);
    for (let t = 0; t < T; t++) {
      const o = t * C;
      let mean = 0;
      if (kind === "layernorm") {
        for (let c = 0; c < C; c++) mean += x[o + c];
        mean /= C;
      }
      let sq = 0;
      for (let c = 0; c < C; c++) sq += (x[o + c] - mean) ** 2;
      const r = 1 / Math.sqrt(sq / C + eps);
      for (let c = 0; c < C; c++) {
        const y = (x[o + c] - mean) * r * p.w[c];
        out[o + c] = p.b ? y + p.b[c] : y;
      }
    }
    return out;
  }

  // erf with a fractional error below 1.2e-7 (Numerical Recipes' erfc)
  function erf(x) {
    const z = Math.abs(x);
    const t = 1 / (1 + 0.5 * z);
    const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 +
      t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 +
      t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? 1 - r : r - 1;
  }

  const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
  const ACTIVATIONS = {
    gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
    relu: (x) => (x > 0 ? x : 0),
    silu: (x) => x / (1 + Math.exp(-x)),
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  };
  // a gated MLP is named by its variant, which names the gate's activation
  const GATED = { swiglu: "silu", geglu: "gelu", reglu: "relu", glu: "sigmoid" };

  /** ALiBi's slopes, as labkit.positions.alibi_slopes (float32). */
  function alibiSlopes(n) {
    const powers = (m) => Array.from({ length: m }, (_, h) => 2 ** ((-8 * (h + 1)) / m));
    const lower = 2 ** Math.floor(Math.log2(n));
    const slopes = powers(lower).concat(
      powers(2 * lower).filter((_, i) => i % 2 === 0).slice(0, n - lower));
    return slopes.map(f32);
  }

  class GPT {
    /** cfg: GPTConfig as a dict (resolved); tensors: safetensors' tensors. */
    constructor(cfg, tensors) {
      this.cfg = cfg;
      const C = (this.C = cfg.d_model);
      const H = (this.H = cfg.n_heads);
      const K = (this.K = cfg.n_kv_heads);
      const D = (this.D = C / H);
      const V = (this.V = cfg.vocab_size);
      const F = (this.F = cfg.d_mlp);
      this.L = cfg.n_layers;
      const used = new Set();
      const get = (name, shape, optional = false) => {
        const t = tensors[name];
        if (!t) {
          if (optional) return null;
          throw new Error(`model.safetensors has no tensor ${name}`);
        }
        if (t.shape.join() !== shape.join()) {
          throw new Error(`${name} has shape [${t.shape}], the config needs [${shape}]`);
        }
        used.add(name);
        return t.data;
      };
      const lin = (p, n, m) => ({ w: get(p + ".weight", [m, n]), b: cfg.bias ? get(p + ".bias", [m]) : null });
      const nrm = (p) => ({
        w: get(p + ".weight", [C]),
        b: cfg.bias && cfg.norm === "layernorm" ? get(p + ".bias", [C]) : null,
      });
      this.tokEmb = get("tok_emb.weight", [V, C]);
      this.posEmb = cfg.pos === "learned" ? get("pos_emb.weight", [cfg.context_len, C]) : null;
      this.blocks = [];
      for (let l = 0; l < this.L; l++) {
        const p = `blocks.${l}.`;
        const block = {
          norm1: nrm(p + "norm_1"),
          q: lin(p + "attn.q_proj", C, H * D),
          k: lin(p + "attn.k_proj", C, K * D),
          v: lin(p + "attn.v_proj", C, K * D),
          o: lin(p + "attn.o_proj", H * D, C),
        };
        if (cfg.mlp !== "none") {
          block.norm2 = nrm(p + "norm_2");
          block.up = lin(p + "mlp.up_proj", C, F);
          block.down = lin(p + "mlp.down_proj", F, C);
          if (GATED[cfg.mlp]) block.gate = lin(p + "mlp.gate_proj", C, F);
        }
        this.blocks.push(block);
      }
      this.normF = cfg.prenorm ? nrm("norm_f") : null;
      this.lmHead = cfg.tie_weights ? this.tokEmb : get("lm_head.weight", [V, C]);
      const extra = Object.keys(tensors).filter((n) => !used.has(n));
      if (extra.length) throw new Error(`model.safetensors holds tensors this config does not use: ${extra.slice(0, 4)}`);
      if (cfg.pos === "rope") {
        // inv_freq = 1 / theta ** (arange(0, D, 2) / D), in float32 as labkit
        this.invFreq = Array.from({ length: D / 2 }, (_, i) =>
          f32(1 / f32(Math.pow(f32(cfg.rope_theta), f32((2 * i) / D)))));
      }
      if (cfg.pos === "sinusoidal") {
        const lnBase = f32(-Math.log(10000));
        this.sinFreq = Array.from({ length: Math.ceil(C / 2) }, (_, i) =>
          f32(Math.exp(f32(f32(lnBase * (2 * i)) / C))));
      }
      if (cfg.pos === "alibi") this.slopes = alibiSlopes(H);
      this.act = ACTIVATIONS[GATED[cfg.mlp] || cfg.mlp];
    }

    get nParams() {
      let n = this.tokEmb.length + (this.posEmb ? this.posEmb.length : 0);
      const count = (o) => Object.values(o).reduce((s, p) => s + p.w.length + (p.b ? p.b.length : 0), 0);
      for (const b of this.blocks) n += count(b);
      if (this.normF) n += count({ f: this.normF });
      if (this.lmHead !== this.tokEmb) n += this.lmHead.length;
      return n;
    }

    /** An empty KV cache for up to maxLen positions: per layer, keys and
     *  values of (K, maxLen, D). */
    newCache(maxLen = this.cfg.context_len) {
      const size = this.K * maxLen * this.D;
      return {
        maxLen,
        length: 0,
        k: Array.from({ length: this.L }, () => new Float32Array(size)),
        v: Array.from({ length: this.L }, () => new Float32Array(size)),
      };
    }

    /** Token embeddings plus the positions added to them (learned,
     *  sinusoidal); positions start at `start`. Shapes: ids (T,) -> (T, C) */
    embed(ids, start) {
      const { C, V } = this;
      const x = new Float32Array(ids.length * C);
      ids.forEach((id, t) => {
        if (!(id >= 0 && id < V)) throw new Error(`token id ${id} is outside 0..${V - 1}`);
        const p = start + t;
        for (let c = 0; c < C; c++) x[t * C + c] = this.tokEmb[id * C + c];
        if (this.posEmb) {
          for (let c = 0; c < C; c++) x[t * C + c] += this.posEmb[p * C + c];
        } else if (this.sinFreq) {
          // PE[p, 2i] = sin(p * f_i), PE[p, 2i + 1] = cos(p * f_i)
          for (let c = 0; c < C; c++) {
            const angle = f32(p * this.sinFreq[c >> 1]);
            x[t * C + c] += f32(c % 2 ? Math.cos(angle) : Math.sin(angle));
          }
        }
      });
      return x;
    }

    /** Rotate each head's feature pairs (i, i + D/2) by p * inv_freq_i:
     *  labkit's "rotate half" RoPE. Shapes: x (T, n * D), in place. */
    rope(x, T, n, start) {
      const D = this.D, half = D / 2;
      for (let t = 0; t < T; t++) {
        const p = start + t;
        for (let i = 0; i < half; i++) {
          const angle = f32(p * this.invFreq[i]);
          const cos = f32(Math.cos(angle)), sin = f32(Math.sin(angle));
          for (let h = 0; h < n; h++) {
            const o = t * n * D + h * D;
            const x1 = x[o + i], x2 = x[o + i + half];
            x[o + i] = x1 * cos - x2 * sin;
            x[o + i + half] = x2 * cos + x1 * sin;
          }
        }
      }
    }

    /** Causal attention of T new positions over the S = start + T cached
     *  ones. Query head h reads kv head h / (H / K). With `weights` (an array
     *  to fill) it keeps each head's (T, S) weights.
     *  Shapes: h (T, C) -> (T, C) */
    attention(h, T, layer, cache, start, weights) {
      const { C, H, K, D, blocks } = this;
      const blk = blocks[layer];
      const q = linear(h, T, C, blk.q.w, blk.q.b, H * D); // (T, H * D)
      const k = linear(h, T, C, blk.k.w, blk.k.b, K * D); // (T, K * D)
      const v = linear(h, T, C, blk.v.w, blk.v.b, K * D); // (T, K * D)
      if (this.invFreq) {
        this.rope(q, T, H, start);
        this.rope(k, T, K, start);
      }
      const M = cache.maxLen;
      const kc = cache.k[layer], vc = cache.v[layer]; // (K, M, D)
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < K; j++) {
          const from = t * K * D + j * D, to = (j * M + start + t) * D;
          for (let d = 0; d < D; d++) {
            kc[to + d] = k[from + d];
            vc[to + d] = v[from + d];
          }
        }
      }
      const S = start + T, group = H / K, scale = 1 / Math.sqrt(D);
      const out = new Float32Array(T * H * D); // (T, H * D)
      const scores = new Float64Array(S);
      for (let hd = 0; hd < H; hd++) {
        const j = Math.floor(hd / group);
        const w = weights ? (weights[hd] = new Float32Array(T * S)) : null; // (T, S)
        for (let t = 0; t < T; t++) {
          const pos = start + t; // keys 0..pos may be attended
          const qo = t * H * D + hd * D;
          let max = -Infinity;
          for (let s = 0; s <= pos; s++) {
            const ko = (j * M + s) * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[qo + d] * kc[ko + d];
            let score = f32(dot * scale);
            if (this.slopes) score -= this.slopes[hd] * (pos - s);
            scores[s] = score;
            if (score > max) max = score;
          }
          let sum = 0;
          for (let s = 0; s <= pos; s++) {
            scores[s] = Math.exp(scores[s] - max);
            sum += scores[s];
          }
          for (let s = 0; s <= pos; s++) {
            const p = scores[s] / sum;
            if (w) w[t * S + s] = p;
            const vo = (j * M + s) * D;
            for (let d = 0; d < D; d++) out[qo + d] += p * vc[vo + d];
          }
        }
      }
      return linear(out, T, H * D, blk.o.w, blk.o.b, C);
    }

    /** The position-wise MLP: down(act(up(x))) or down(act(gate(x)) * up(x)).
     *  Shapes: x (T, C) -> (T, C); hidden (T, F) */
    mlp(x, T, blk) {
      const { C, F, act } = this;
      const up = linear(x, T, C, blk.up.w, blk.up.b, F);
      const gate = blk.gate ? linear(x, T, C, blk.gate.w, blk.gate.b, F) : null;
      for (let i = 0; i < up.length; i++) up[i] = gate ? act(gate[i]) * up[i] : act(up[i]);
      return linear(up, T, F, blk.down.w, blk.down.b, C);
    }

    /**
     * Run T new tokens after the cache's `length` ones (a cache of its own,
     * sized T, when none is given: the whole window at once).
     * Returns {logits, attention}: logits (T, V), or (1, V) for the last
     * position only with {lastOnly: true}; attention, with {weights: true},
     * is [layer][head] -> (T, S) weights.
     */
    forward(ids, cache = null, opts = {}) {
      const { C, V, cfg } = this;
      const T = ids.length;
      if (T === 0) throw new Error("forward needs at least one token");
      cache = cache || this.newCache(T);
      const start = cache.length;
      if (start + T > cache.maxLen) {
        throw new Error(`KV cache is full: ${start} cached + ${T} new > ${cache.maxLen}`);
      }
      if (this.posEmb && start + T > cfg.context_len) {
        throw new Error(`position ${start + T - 1} is past context_len=${cfg.context_len}`);
      }
      const eps = cfg.norm_eps;
      const attention = opts.weights ? [] : null;
      let x = this.embed(ids, start); // (T, C)
      this.blocks.forEach((blk, l) => {
        const w = attention ? (attention[l] = []) : null;
        const add = (a, b) => {
          for (let i = 0; i < a.length; i++) a[i] += b[i];
          return a;
        };
        if (cfg.prenorm) {
          add(x, this.attention(norm(cfg.norm, x, T, C, blk.norm1, eps), T, l, cache, start, w));
          if (blk.up) add(x, this.mlp(norm(cfg.norm, x, T, C, blk.norm2, eps), T, blk));
        } else {
          x = norm(cfg.norm, add(x, this.attention(x, T, l, cache, start, w)), T, C, blk.norm1, eps);
          if (blk.up) x = norm(cfg.norm, add(x, this.mlp(x, T, blk)), T, C, blk.norm2, eps);
        }
      });
      cache.length = start + T;
      const rows = opts.lastOnly ? 1 : T;
      let last = opts.lastOnly ? x.subarray((T - 1) * C) : x;
      if (this.normF) last = norm(cfg.norm, last, rows, C, this.normF, eps);
      return { logits: linear(last, rows, C, this.lmHead, null, V), attention };
    }
  }

  // ---------------------------------------------------------------------------
  // 4. From logits to a token (labkit/sampling.py)
  // ---------------------------------------------------------------------------

  function argmax(a) {
    let best = 0;
    for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
    return best;
  }

  function softmax(z) {
    let max = -Infinity;
    for (const v of z) if (v > max) max = v;
    const out = new Float64Array(z.length);
    let sum = 0;
    for (let i = 0; i < z.length; i++) sum += out[i] = z[i] === -Infinity ? 0 : Math.exp(z[i] - max);
    for (let i = 0; i < z.length; i++) out[i] /= sum;
    return out;
  }

  /**
   * The distribution a sampler draws from, as labkit.sampling.next_token_probs:
   * logits / temperature, then top-k (keep logits >= the k-th largest), then
   * top-p (keep the most likely tokens until the mass before a token reaches
   * p; the first is always kept). temperature 0 is greedy: all the mass on
   * the argmax. topK 0 and topP 1 mean off.
   */
  function nextTokenProbs(logits, temperature, topK, topP) {
    const V = logits.length;
    if (temperature === 0) {
      const out = new Float64Array(V);
      out[argmax(logits)] = 1;
      return out;
    }
    const z = Float64Array.from(logits, (v) => v / temperature);
    if (topK > 0 && topK < V) {
      const kth = Float64Array.from(z).sort().reverse()[topK - 1];
      for (let i = 0; i < V; i++) if (z[i] < kth) z[i] = -Infinity;
    }
    if (topP < 1) {
      const order = Array.from(z.keys()).sort((a, b) => z[b] - z[a] || a - b);
      const p = softmax(order.map((i) => z[i]));
      let before = 0;
      order.forEach((i, r) => {
        if (before >= topP) z[i] = -Infinity;
        before += p[r];
      });
    }
    return softmax(z);
  }

  /** A seeded generator of floats in [0, 1) (mulberry32). */
  function seededRandom(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function draw(probs, random) {
    let u = random();
    for (let i = 0; i < probs.length; i++) {
      u -= probs[i];
      if (u < 0) return i;
    }
    return argmax(probs); // rounding left a sliver: the likeliest token
  }

  /**
   * The decoding loop of labkit.sampling, for one prompt: yields
   * {token, logits} per step. With the cache each step runs the model on the
   * new token only, while the text fits the context; past it the window is
   * cropped to the last context_len tokens and run whole, as labkit does.
   * settings: {temperature, topK, topP}; random: a seeded generator; stop:
   * a Set of ids that end the text (the stop token kept, as labkit's eos_id).
   */
  function* decode(model, ids, n, settings, random, useCache = true, stop = null) {
    const ctx = model.cfg.context_len;
    const seq = ids.slice();
    const cache = useCache ? model.newCache(ctx) : null;
    let fed = 0; // tokens of seq already in the cache
    for (let step = 0; step < n; step++) {
      let logits;
      if (cache && seq.length <= ctx) {
        logits = model.forward(seq.slice(fed), cache, { lastOnly: true }).logits;
        fed = seq.length;
      } else {
        logits = model.forward(seq.slice(-ctx), null, { lastOnly: true }).logits;
      }
      const { temperature, topK, topP } = settings;
      const token = temperature === 0 ? argmax(logits)
        : draw(nextTokenProbs(logits, temperature, topK, topP), random);
      seq.push(token);
      yield { token, logits };
      if (stop && stop.has(token)) return;
    }
  }

  // ---------------------------------------------------------------------------
  // 5. Loading a model folder
  // ---------------------------------------------------------------------------

  const LOADING = new Map(); // folder URL -> Promise of a Model

  async function fetchOk(url, what) {
    let response;
    try {
      response = await fetch(url);
    } catch (e) {
      throw new Error(`could not fetch ${what} (${url}): ${e.message}`);
    }
    if (!response.ok) throw new Error(`${what} not found at ${url} (HTTP ${response.status})`);
    return response;
  }

  /** model.json and the weights from a bundle.js script: the way in for a
   *  page opened as file://, where fetch() is refused. */
  function loadBundle(url) {
    const src = new URL("bundle.js", url).href;
    const bundles = (window.LabkitLiveBundles = window.LabkitLiveBundles || {});
    if (bundles[src]) return Promise.resolve(bundles[src]);
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => (bundles[src] ? resolve(bundles[src]) : reject(new Error(`${src} holds no model`)));
      s.onerror = () => reject(new Error(
        `this page was opened as a file, and its model (${src}) could not be read; ` +
        "serve the folder over HTTP instead, e.g. python -m http.server -d _build/html"));
      document.head.appendChild(s);
    });
  }

  async function readFolder(url) {
    if (location.protocol === "file:") {
      const bundle = await loadBundle(url);
      const bytes = Uint8Array.from(atob(bundle.weights), (c) => c.charCodeAt(0));
      return { spec: bundle.spec, weights: bytes.buffer };
    }
    const spec = await (await fetchOk(new URL("model.json", url), "model.json")).json();
    const weights = await (await fetchOk(new URL(spec.weights, url), spec.weights)).arrayBuffer();
    return { spec, weights };
  }

  /** The model in the folder at `url` (shared by every component on a page):
   *  {url, spec, gpt, tokenizer}. */
  function load(url) {
    url = new URL(url, document.baseURI).href;
    if (!url.endsWith("/")) url += "/";
    if (!LOADING.has(url)) {
      LOADING.set(url, (async () => {
        const { spec, weights } = await readFolder(url);
        if (spec.format !== "labkit.web" || spec.version !== VERSION) {
          throw new Error(`model.json is ${spec.format} version ${spec.version}; this page reads labkit.web version ${VERSION}`);
        }
        const { tensors } = readSafetensors(weights, spec.weights);
        return { url, spec, gpt: new GPT(spec.config, tensors), tokenizer: makeTokenizer(spec.tokenizer) };
      })());
    }
    return LOADING.get(url);
  }

  // ---------------------------------------------------------------------------
  // 6. The component
  // ---------------------------------------------------------------------------

  const STYLE = `
.labkit-live { margin: 1em 0; }
.labkit-live .ll-root { border: 1px solid #c8c8d0; border-radius: 6px; padding: 10px 12px;
  font-size: 14px; line-height: 1.4; background: #fcfcfd; color: #222; }
.labkit-live .ll-head { font-weight: 600; margin-bottom: 2px; }
.labkit-live .ll-sub { color: #555; font-size: 12px; margin-bottom: 6px; }
.labkit-live textarea.ll-prompt { width: 100%; box-sizing: border-box; font: 14px monospace;
  min-height: 3.2em; padding: 4px 6px; border: 1px solid #aab; border-radius: 4px; }
.labkit-live .ll-tokens { font: 13px monospace; margin: 6px 0; line-height: 1.9; word-break: break-all; }
.labkit-live .ll-tok { border-radius: 3px; padding: 1px 1px; margin-right: 1px; white-space: pre; }
.labkit-live .ll-tok.ll-cropped { opacity: 0.35; text-decoration: line-through; }
.labkit-live .ll-tok.ll-unknown { background: #fff !important; outline: 1px dashed #c00; color: #c00; }
.labkit-live .ll-tok.ll-new { outline: 1px solid #888; }
.labkit-live .ll-notes { margin: 4px 0; padding: 0; list-style: none; }
.labkit-live .ll-notes li { color: #8a4b00; font-size: 13px; }
.labkit-live .ll-notes li::before { content: "\\26A0\\FE0E  "; }
.labkit-live .ll-section { margin-top: 10px; border-top: 1px solid #e4e4ea; padding-top: 8px; }
.labkit-live .ll-title { font-weight: 600; font-size: 13px; margin-bottom: 4px; }
.labkit-live .ll-controls { display: flex; flex-wrap: wrap; gap: 4px 18px; align-items: center; font-size: 13px; }
.labkit-live .ll-controls label { display: inline-flex; align-items: center; gap: 6px; }
.labkit-live .ll-controls input[type=range] { width: 120px; }
.labkit-live .ll-controls input[type=number] { width: 5em; }
.labkit-live .ll-value { font: 12px monospace; min-width: 3.5em; display: inline-block; }
.labkit-live .ll-bars { margin-top: 6px; display: grid; grid-template-columns: max-content 1fr max-content;
  gap: 1px 8px; align-items: center; font: 12px monospace; }
.labkit-live .ll-bar-track { background: #eef; height: 12px; border-radius: 2px; position: relative; }
.labkit-live .ll-bar { background: #1f77b4; height: 12px; border-radius: 2px; }
.labkit-live .ll-bar.ll-removed { background: #bbb; }
.labkit-live .ll-out { font: 13px monospace; white-space: pre-wrap; word-break: break-all; margin-top: 6px;
  min-height: 1.5em; padding: 4px 6px; background: #f4f4f8; border-radius: 4px; }
.labkit-live .ll-out .ll-context { color: #888; }
.labkit-live .ll-speed { color: #555; font-size: 12px; margin-top: 2px; }
.labkit-live button { font-size: 13px; padding: 2px 10px; margin-right: 6px; cursor: pointer; }
.labkit-live .ll-heads { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 6px; }
.labkit-live .ll-head-map { font-size: 12px; text-align: center; }
.labkit-live canvas { border: 1px solid #ccd; image-rendering: pixelated; cursor: crosshair; }
.labkit-live .ll-hover { font: 12px monospace; min-height: 1.4em; color: #333; }
.labkit-live .ll-error { color: #b00; }
`;
  const COLOURS = ["#fde2e4", "#e2ece9", "#dfe7fd", "#fff1c1", "#e8dff5", "#d4f0f0", "#fce1c8"];
  const PARTS = ["next", "generate", "attention"];

  function injectStyle() {
    if (document.getElementById("labkit-live-style")) return;
    const style = document.createElement("style");
    style.id = "labkit-live-style";
    style.textContent = STYLE;
    document.head.appendChild(style);
  }

  /** document.createElement with attributes, children and event handlers. */
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  /** A token's text, with white space made visible. */
  function visible(text) {
    return text.replace(/ /g, "\u2423").replace(/\n/g, "\u23ce").replace(/\t/g, "\u21e5");
  }

  function fmtPercent(p) {
    return p >= 0.01 || p === 0 ? (100 * p).toFixed(1) + "%" : Number((100 * p).toPrecision(2)) + "%";
  }

  function fmtCount(n) {
    return n >= 1e6 ? (n / 1e6).toFixed(2) + "M" : n >= 1e3 ? (n / 1e3).toFixed(1) + "k" : String(n);
  }

  const pause = () => new Promise((resolve) => setTimeout(resolve, 0));

  /**
   * One component on the page, bound to a `.labkit-live` element. The element
   * says what to show: data-src (the model folder, relative to the page) or
   * data-model (a folder beside this script), data-prompt, data-parts (any of
   * "next generate attention"), data-temperature, data-top-k, data-top-p.
   * Everything the component computes is kept on it (ids, logits, bars,
   * attention, notes) for whoever wants to read it, such as the site check.
   */
  class LiveView {
    constructor(el) {
      this.el = el;
      el.dataset.state = "loading";
      this.parts = el.dataset.parts ? el.dataset.parts.split(/\s+/) : PARTS;
      this.url = el.dataset.src
        ? new URL(el.dataset.src, document.baseURI).href
        : new URL(el.dataset.model + "/", SCRIPT_URL).href;
      this.notes = {};
      const fallback = el.querySelector(".ll-fallback");
      if (fallback) fallback.textContent = "Loading the live model\u2026";
      this.ready = load(this.url).then(
        (model) => {
          this.model = model;
          this.build();
          el.dataset.state = "ready";
          return this;
        },
        (error) => {
          el.dataset.state = "error";
          this.error = error.message;
          el.replaceChildren(h("div", { class: "ll-root ll-error" },
            `The live model could not start: ${error.message}`));
          throw error;
        });
      this.ready.catch(() => {}); // the message above is the report
    }

    // --- building the DOM -----------------------------------------------------
    build() {
      injectStyle();
      const { spec, gpt } = this.model;
      const cfg = spec.config;
      const tk = spec.tokenizer.kind === "char" ? "characters"
        : spec.tokenizer.merges.length ? `byte-level BPE, ${cfg.vocab_size} tokens` : "bytes";
      this.prompt = h("textarea", { class: "ll-prompt", spellcheck: "false", "aria-label": "prompt",
        oninput: () => this.schedule() });
      this.prompt.value = this.el.dataset.prompt ?? "Once upon a time";
      this.tokens = h("div", { class: "ll-tokens" });
      this.noteList = h("ul", { class: "ll-notes" });
      const root = h("div", { class: "ll-root" },
        h("div", { class: "ll-head" }, `Live model: ${spec.description || spec.name}`),
        h("div", { class: "ll-sub" },
          `${cfg.n_layers} layers \u00d7 ${cfg.n_heads} heads, d_model ${cfg.d_model}, ` +
          `context ${cfg.context_len}, ${tk}, ${fmtCount(gpt.nParams)} parameters ` +
          `(${spec.dtype}), running in this page: every number below is computed here.`),
        this.prompt, this.tokens, this.noteList);
      if (this.parts.includes("next")) root.append(this.buildNext());
      if (this.parts.includes("generate")) root.append(this.buildGenerate());
      if (this.parts.includes("attention")) root.append(this.buildAttention());
      this.el.replaceChildren(root);
      this.update();
    }

    range(name, min, max, step, value, onInput) {
      const out = h("span", { class: "ll-value" });
      const input = h("input", { type: "range", min, max, step, value, name,
        "aria-label": name, oninput: () => onInput() });
      return { label: h("label", {}, name, input, out), input, out };
    }

    buildNext() {
      const d = this.el.dataset;
      const V = this.model.spec.config.vocab_size;
      this.temp = this.range("temperature", 0, 2, 0.05, d.temperature ?? 1, () => this.redrawBars());
      this.topK = this.range("top-k", 0, V, 1, d.topK ?? 0, () => this.redrawBars());
      this.topP = this.range("top-p", 0, 1, 0.01, d.topP ?? 1, () => this.redrawBars());
      this.barsTitle = h("div", { class: "ll-title" });
      this.bars = h("div", { class: "ll-bars" });
      return h("div", { class: "ll-section ll-next" }, this.barsTitle,
        h("div", { class: "ll-controls" }, this.temp.label, this.topK.label, this.topP.label),
        this.bars);
    }

    buildGenerate() {
      this.seed = h("input", { type: "number", value: 0, min: 0, step: 1, name: "seed", "aria-label": "seed" });
      this.nNew = h("input", { type: "number", value: 60, min: 1, max: 1000, step: 1, name: "new tokens",
        "aria-label": "new tokens" });
      this.useCache = h("input", { type: "checkbox", checked: true, name: "KV cache" });
      this.out = h("div", { class: "ll-out" });
      this.speed = h("div", { class: "ll-speed" });
      const button = (text, cls, onclick) => h("button", { type: "button", class: cls, onclick }, text);
      this.sampleButton = button("Sample", "ll-sample", () => this.generate({ greedy: false }));
      this.greedyButton = button("Greedy", "ll-greedy", () => this.generate({ greedy: true }));
      this.stopButton = button("Stop", "ll-stop", () => (this.stopping = true));
      this.appendButton = button("Append to prompt", "ll-append", () => {
        if (!this.generated) return;
        this.prompt.value = this.generated.text;
        this.update();
      });
      return h("div", { class: "ll-section ll-generate" },
        h("div", { class: "ll-title" }, "Generate (uses the temperature, top-k and top-p above)"),
        h("div", { class: "ll-controls" }, this.sampleButton, this.greedyButton, this.stopButton,
          h("label", {}, "seed", this.seed), h("label", {}, "new tokens", this.nNew),
          h("label", {}, this.useCache, "KV cache"), this.appendButton),
        this.out, this.speed);
    }

    buildAttention() {
      const L = this.model.spec.config.n_layers;
      this.layer = this.range("layer", 0, L - 1, 1, 0, () => this.redrawAttention());
      this.heads = h("div", { class: "ll-heads" });
      this.hover = h("div", { class: "ll-hover" }, "hover over a map to read a weight");
      return h("div", { class: "ll-section ll-attention" },
        h("div", { class: "ll-title" },
          "Attention on the prompt: rows are queries, columns the keys they look at; each row sums to 1"),
        h("div", { class: "ll-controls" }, this.layer.label), this.heads, this.hover);
    }

    // --- the text and the forward pass -------------------------------------------
    schedule() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.update();
      });
    }

    setNote(key, text) {
      if (text) this.notes[key] = text;
      else delete this.notes[key];
      this.noteList.replaceChildren(...Object.entries(this.notes).map(([k, t]) =>
        h("li", { "data-note": k }, t)));
    }

    /** Tokenize the prompt, crop it to the context, run the model once over
     *  it (attention weights kept), then redraw everything. */
    update() {
      const { gpt, tokenizer } = this.model;
      const ctx = gpt.cfg.context_len;
      this.text = this.prompt.value;
      const { ids, pieces } = tokenizer.encode(this.text);
      const unknown = pieces.filter((p) => p.unknown).map((p) => p.text);
      this.unknown = unknown;
      this.setNote("unknown", unknown.length ? `${unknown.length} character${unknown.length > 1 ? "s are" : " is"} ` +
        `not in this model's alphabet of ${tokenizer.vocabSize} and left out: ` +
        [...new Set(unknown)].slice(0, 5).map((c) =>
          `'${c}' (U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")})`).join(", ") : null);
      this.cropped = Math.max(0, ids.length - ctx);
      this.setNote("crop", this.cropped ? `The text is ${ids.length} tokens; the model's context is ` +
        `${ctx}, so it reads the last ${ctx}: the first ${this.cropped} are crossed out.` : null);
      this.ids = ids.slice(this.cropped); // what the model reads
      this.setNote("empty", this.ids.length ? null : "Type a prompt: the model needs at least one token.");
      let seen = 0;
      this.tokens.replaceChildren(...pieces.map((p, i) => {
        const cls = ["ll-tok"];
        let title;
        if (p.unknown) {
          cls.push("ll-unknown");
          title = "not in the alphabet: left out";
        } else {
          if (seen < this.cropped) cls.push("ll-cropped");
          title = seen < this.cropped ? `token ${p.id}, cropped: past the context`
            : `token ${p.id}, position ${seen - this.cropped}`;
          seen++;
        }
        return h("span", { class: cls.join(" "), title, style: p.unknown ? null : `background:${COLOURS[i % COLOURS.length]}` },
          p.unknown ? "?" + p.text : visible(p.text));
      }));
      if (this.ids.length) {
        const run = gpt.forward(this.ids, null, { weights: this.parts.includes("attention") });
        const V = gpt.V, T = this.ids.length;
        this.logits = run.logits.slice((T - 1) * V); // after the whole prompt
        this.attention = run.attention;
      } else {
        this.logits = null;
        this.attention = null;
      }
      this.redrawBars();
      this.redrawAttention();
    }

    // --- next-token bars -----------------------------------------------------------------
    /** The sampling settings as the controls give them, clamped where the
     *  knob has no meaning (top-p 0 keeps no token). */
    settings() {
      if (!this.temp) return { temperature: 1, topK: 0, topP: 1 };
      const temperature = Number(this.temp.input.value);
      const topK = Number(this.topK.input.value);
      let topP = Number(this.topP.input.value);
      this.setNote("top-p", topP <= 0 ? "top-p 0 keeps no token: clamped to 0.01, which keeps only " +
        "the most likely one (unless it has less than 1%)." : null);
      topP = Math.max(topP, 0.01);
      this.setNote("temperature", temperature === 0 ? "temperature 0 is greedy: all the probability " +
        "goes to the most likely token, and top-k and top-p have nothing left to cut." : null);
      this.temp.out.textContent = temperature.toFixed(2) + (temperature === 0 ? " (greedy)" : "");
      this.topK.out.textContent = topK === 0 ? "off" : String(topK);
      this.topP.out.textContent = topP >= 1 ? "1 (off)" : topP.toFixed(2);
      return { temperature, topK, topP };
    }

    redrawBars() {
      const s = this.settings();
      if (!this.bars) return;
      if (!this.logits) {
        this.barsTitle.textContent = "Next token";
        this.bars.replaceChildren();
        this.barsData = [];
        return;
      }
      const { tokenizer } = this.model;
      const probs = nextTokenProbs(this.logits, s.temperature, s.topK, s.topP);
      const raw = nextTokenProbs(this.logits, s.temperature || 1, 0, 1); // before the filters
      const order = Array.from(this.logits.keys()).sort((a, b) => this.logits[b] - this.logits[a] || a - b);
      const top = order.slice(0, 20);
      this.barsData = top.map((id) => ({ id, text: tokenizer.tokenText(id), prob: probs[id], kept: probs[id] > 0 }));
      const tail = this.text.slice(-30);
      this.barsTitle.textContent = `Next token after \u201c${this.text.length > 30 ? "\u2026" : ""}${tail}\u201d: ` +
        `the ${top.length} most likely of ${this.logits.length} (grey: removed by top-k or top-p)`;
      this.bars.replaceChildren(...this.barsData.flatMap((b) => [
        h("span", { class: "ll-label", title: `token ${b.id}` }, visible(b.text)),
        h("div", { class: "ll-bar-track" },
          h("div", { class: "ll-bar" + (b.kept ? "" : " ll-removed"), "data-token": b.id,
            style: `width:${(100 * (b.kept ? b.prob : raw[b.id])).toFixed(2)}%` })),
        h("span", { class: "ll-prob" }, b.kept ? fmtPercent(b.prob) : `${fmtPercent(raw[b.id])} removed`),
      ]));
    }

    // --- generation --------------------------------------------------------------------------
    /** The ids of the special tokens named in data-stop (a JSON list), which
     *  end a continuation; a name the tokenizer lacks is said. */
    stopIds() {
      const names = JSON.parse(this.el.dataset.stop || "[]");
      const special = this.model.tokenizer.special || {};
      const missing = names.filter((t) => !(t in special));
      this.setNote("stop", missing.length ? `stop tokens not in this tokenizer: ${missing.join(", ")}` : null);
      return new Set(names.filter((t) => t in special).map((t) => special[t]));
    }

    /** Continue the prompt by `new tokens` tokens, greedy or sampled with the
     *  seed, streaming them into the output box. Resolves to {ids, text,
     *  msPerToken}. */
    async generate({ greedy = false, seed = null, n = null, useCache = null } = {}) {
      if (!this.model || this.running) return null;
      if (!this.ids.length) {
        this.out.textContent = "Type a prompt first.";
        return null;
      }
      const { gpt, tokenizer } = this.model;
      const s = greedy ? { temperature: 0, topK: 0, topP: 1 } : this.settings();
      n = n ?? Math.max(1, Math.min(1000, Number(this.nNew.value) || 60));
      seed = seed ?? (Number(this.seed.value) || 0);
      useCache = useCache ?? this.useCache.checked;
      this.running = true;
      this.stopping = false;
      const made = [];
      const context = h("span", { class: "ll-context" }, tokenizer.decode(this.ids).slice(-60));
      const pieces = h("span", { class: "ll-new-text" });
      this.out.replaceChildren(context, pieces);
      let spent = 0;
      let last = performance.now();
      try {
        const steps = decode(gpt, this.ids, n, s, seededRandom(seed), useCache, this.stopIds());
        while (!this.stopping) {
          const t0 = performance.now();
          const step = steps.next();
          if (step.done) break;
          spent += performance.now() - t0;
          made.push(step.value.token);
          pieces.append(h("span", { class: "ll-tok ll-new", style: `background:${COLOURS[made.length % COLOURS.length]}`,
            title: `token ${step.value.token}` }, tokenizer.tokenText(step.value.token)));
          if (performance.now() - last > 30) { // let the page draw now and then
            await pause();
            last = performance.now();
          }
        }
      } finally {
        this.running = false;
      }
      const ms = made.length ? spent / made.length : 0;
      const how = greedy || s.temperature === 0 ? "greedy" : `sampled with seed ${seed}`;
      this.speed.textContent = `${made.length} tokens ${how} in ${spent.toFixed(0)} ms: ` +
        `${ms.toFixed(2)} ms per token (KV cache ${useCache ? "on" : "off"})`;
      this.generated = { ids: made, text: tokenizer.decode(this.ids.concat(made)), msPerToken: ms,
        continuation: tokenizer.decode(made) };
      return this.generated;
    }

    // --- attention maps ------------------------------------------------------------------------
    redrawAttention() {
      if (!this.heads) return;
      if (!this.attention) {
        this.heads.replaceChildren();
        return;
      }
      const layer = Number(this.layer.input.value);
      this.layer.out.textContent = `${layer} of 0..${this.attention.length - 1}`;
      const maps = this.attention[layer];
      const T = this.ids.length;
      const labels = this.ids.map((id) => visible(this.model.tokenizer.tokenText(id)));
      const cell = Math.max(2, Math.min(12, Math.floor(240 / T)));
      this.entropy = maps.map((w) => { // mean over queries, in bits
        let total = 0;
        for (let t = 0; t < T; t++) {
          for (let s = 0; s <= t; s++) {
            const p = w[t * T + s];
            if (p > 0) total -= p * Math.log2(p);
          }
        }
        return total / T;
      });
      this.heads.replaceChildren(...maps.map((w, hd) => {
        const canvas = h("canvas", { width: T * cell, height: T * cell, "data-head": hd });
        const g = canvas.getContext("2d");
        for (let t = 0; t < T; t++) {
          for (let s = 0; s < T; s++) {
            const p = s <= t ? w[t * T + s] : 0;
            // white -> dark blue as the weight goes 0 -> 1
            g.fillStyle = `rgb(${Math.round(255 - 247 * p)},${Math.round(255 - 207 * p)},${Math.round(255 - 148 * p)})`;
            g.fillRect(s * cell, t * cell, cell, cell);
          }
        }
        canvas.addEventListener("mousemove", (e) => {
          const box = canvas.getBoundingClientRect();
          const s = Math.floor(((e.clientX - box.left) / box.width) * T);
          const t = Math.floor(((e.clientY - box.top) / box.height) * T);
          if (t < 0 || s < 0 || t >= T || s >= T) return;
          this.hover.textContent = `layer ${layer} head ${hd}: query ${t} '${labels[t]}' \u2192 key ${s} ` +
            `'${labels[s]}': ${s <= t ? w[t * T + s].toFixed(3) : "0 (future)"}`;
        });
        return h("div", { class: "ll-head-map" }, canvas, h("div", {},
          `head ${hd} \u00b7 ${this.entropy[hd].toFixed(2)} bits`));
      }));
    }
  }

  // ---------------------------------------------------------------------------
  // 7. Start
  // ---------------------------------------------------------------------------

  /** Bind a component to a `.labkit-live` element (once). */
  function mount(el) {
    if (!el.labkitLive) el.labkitLive = new LiveView(el);
    return el.labkitLive;
  }

  /** Mount every element the page marks data-mount="auto" (the book's). */
  function mountAll() {
    document.querySelectorAll('.labkit-live[data-mount="auto"]').forEach(mount);
  }

  window.LabkitLive = {
    VERSION, load, mount, mountAll, readSafetensors, makeTokenizer, GPT,
    nextTokenProbs, decode, seededRandom,
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
