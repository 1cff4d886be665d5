// Our engine's logits on the tiny Hub-format checkpoints against an independent implementation
// (scripts/reference_logits.py: hand-written PyTorch following Hugging Face's Llama/Qwen2 semantics, whose
// output is committed as tests/fixtures/hub/reference.json). The checkpoints load through the real path:
// loadHubModel on a repo id, with fetch stubbed at the network boundary.
//
// Tolerance, stated once: the project's forward rule |gpu - ref| <= 1e-5 + 1e-4 |ref| on every logit of every
// position. Measured: max |diff| about 6e-6 on logits of magnitude up to 5.4 (1.3e-6 of the largest).
// The drift cases show the check has teeth: each runs the engine on weights or a config rearranged so that
// it computes what an engine with another convention (interleaved RoPE, another GQA head mapping, a
// missing or default RMSNorm epsilon, Llama's default rope_theta) would, and the logits must then fail.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/device';
import { lastPositionLogits } from '../../src/cli/logits';
import { type HubModel, loadHubModel } from '../../src/hub/load';
import { headDim, type ModelConfig } from '../../src/model/config';
import { layoutParams, type ParamTensors } from '../../src/model/params';
import { logitBlocks } from '../../src/model/vocab';
import { createTrainer } from '../../src/train/trainer';
import { testGpu, withBindingLimit } from '../helpers/gpu';
import { assertClose, FWD } from '../helpers/numeric';
import { fixtureFetch, MODELS, reference } from './fixture_fetch';

const ref = reference();
let gpu: Gpu;
const models = new Map<string, HubModel>();

beforeAll(async () => {
  gpu = await testGpu();
  for (const name of MODELS) models.set(name, await loadHubModel(`fixtures/${name}`, { fetch: fixtureFetch(), cache: false }));
});

/** Every position's logits [T, V] through the training forward pass (on `g`, the test GPU by default). */
async function allLogits(cfg: ModelConfig, tensors: ParamTensors, tokens: number[], g: Gpu = gpu): Promise<Float32Array> {
  const T = tokens.length;
  const tr = createTrainer(g, cfg, { B: 1, T });
  tr.loadParams(tensors);
  tr.setBatch({ tokens: Uint32Array.from(tokens), targets: new Uint32Array(T), mask: new Float32Array(T) });
  tr.forward();
  const out = await tr.readLogits();
  tr.destroy();
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('logits vs the PyTorch reference (tests/fixtures/hub/reference.json)', () => {
  for (const name of MODELS) {
    it(`${name}: tokens, every position's logits and the top 10 match`, async () => {
      const m = models.get(name)!;
      expect(m.tokenizer.encode(ref.texts[0])).toEqual(ref.tokens[0]);
      expect(m.tokenizer.encode(ref.texts[1])).toEqual(ref.tokens[1]);
      const want = ref.models[name].logits.flat();
      const got = await allLogits(m.cfg, m.tensors, ref.tokens[0]);
      assertClose(got, want, FWD, `${name} logits`);
      const V = m.cfg.vocab;
      // The generator's KV-cache path (what `logits` prints) gives the same last row.
      const last = await lastPositionLogits(gpu, m.cfg, m.tensors, ref.tokens[0]);
      assertClose(last, want.slice(-V), FWD, `${name} last position (inference plan)`);
      const second = await lastPositionLogits(gpu, m.cfg, m.tensors, ref.tokens[1]);
      const top = ref.models[name].top;
      assertClose(top.map((t) => second[t.id]), top.map((t) => t.logit), FWD, `${name} top 10`);
      console.log(`${name}: max |diff| ${maxDiff(got, want).toExponential(2)} over ${want.length} logits (max |logit| ${Math.max(...want.map(Math.abs)).toFixed(2)})`);
    });
  }

  it('loads what each checkpoint holds: dtypes, shards, tied head', () => {
    expect(models.get('tiny-llama-f32')!.checkpoint.dtypes).toEqual({ F32: 21 });
    expect(models.get('tiny-llama-bf16')!.checkpoint.dtypes).toEqual({ BF16: 20 });
    expect(models.get('tiny-llama-bf16')!.cfg.tieEmbeddings).toBe(true);
    expect(models.get('tiny-qwen2-sharded')!.checkpoint.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(models.get('tiny-qwen2-sharded')!.cfg).toMatchObject({ qkvBias: true, vocab: 302, ropeTheta: 1e6, normEps: 1e-5 });
  });
});

describe('the same logits under a small binding limit (embedding and LM head in row chunks, logits in row blocks)', () => {
  // 6 KiB: the 48 x 32 MLP weights still fit whole; the ~300 x 32 embedding and LM head become 7 chunks,
  // and the logits [T, V] blocks of 5 rows.
  const LIMIT = 6144;
  for (const name of MODELS) {
    it(`${name}: loaded under the limit, every position's logits and the inference plan's last row match reference.json`, async () => {
      const small = withBindingLimit(gpu, LIMIT);
      const m = await loadHubModel(`fixtures/${name}`, { fetch: fixtureFetch(), cache: false, maxBindingBytes: LIMIT });
      const heads = m.cfg.tieEmbeddings ? ['model.embed_tokens.weight'] : ['model.embed_tokens.weight', 'lm_head.weight'];
      for (const h of heads) expect(layoutParams(m.cfg, LIMIT).byName.get(h)!.parts.length).toBe(7);
      expect(logitBlocks(m.cfg.vocab, ref.tokens[0].length, LIMIT).length).toBeGreaterThan(1);
      const want = ref.models[name].logits.flat();
      assertClose(await allLogits(m.cfg, m.tensors, ref.tokens[0], small), want, FWD, `${name} logits, split`);
      const last = await lastPositionLogits(small, m.cfg, m.tensors, ref.tokens[0]);
      assertClose(last, want.slice(-m.cfg.vocab), FWD, `${name} last position (inference plan), split`);
    });
  }
});

/** Rows of a [heads*D, C] projection reordered within each head: new row j of a head = old row perm[j]. */
function permuteHeadRows(w: Float32Array, heads: number, D: number, C: number, perm: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) for (let j = 0; j < D; j++) out.set(w.subarray((h * D + perm[j]) * C, (h * D + perm[j] + 1) * C), (h * D + j) * C);
  return out;
}

/** Whole heads reordered: head h of the result is head order[h] (rows of q_proj, columns of o_proj). */
function permuteHeads(t: ParamTensors, cfg: ModelConfig, order: number[]): ParamTensors {
  const D = headDim(cfg);
  const C = cfg.dModel;
  const out = new Map(t);
  for (let l = 0; l < cfg.nLayers; l++) {
    const q = t.get(`model.layers.${l}.self_attn.q_proj.weight`)!;
    const o = t.get(`model.layers.${l}.self_attn.o_proj.weight`)!; // [C, H*D]
    const q2 = new Float32Array(q.length);
    const o2 = new Float32Array(o.length);
    order.forEach((src, h) => {
      q2.set(q.subarray(src * D * C, (src + 1) * D * C), h * D * C);
      for (let r = 0; r < C; r++) for (let j = 0; j < D; j++) o2[r * cfg.nHeads * D + h * D + j] = o[r * cfg.nHeads * D + src * D + j];
    });
    out.set(`model.layers.${l}.self_attn.q_proj.weight`, q2);
    out.set(`model.layers.${l}.self_attn.o_proj.weight`, o2);
  }
  return out;
}

describe('the reference check catches convention drift (tiny-llama-f32)', () => {
  const drifts: { name: string; apply(cfg: ModelConfig, t: ParamTensors): [ModelConfig, ParamTensors] }[] = [
    {
      // Interleaved RoPE rotates pairs (2i, 2i+1); rotate-half rotates (i, i + D/2). Rotate-half on q/k rows
      // reordered [0, 2, 4, ..., 1, 3, 5, ...] computes exactly interleaved RoPE on the original weights.
      name: 'interleaved (GPT-J) RoPE instead of rotate-half',
      apply(cfg, t) {
        const D = headDim(cfg);
        const perm = [...Array.from({ length: D / 2 }, (_, i) => 2 * i), ...Array.from({ length: D / 2 }, (_, i) => 2 * i + 1)];
        const out = new Map(t);
        for (let l = 0; l < cfg.nLayers; l++) {
          for (const [p, heads] of [['q_proj', cfg.nHeads], ['k_proj', cfg.nKvHeads]] as const) {
            const key = `model.layers.${l}.self_attn.${p}.weight`;
            out.set(key, permuteHeadRows(t.get(key)!, heads, D, cfg.dModel, perm));
          }
        }
        return [cfg, out];
      },
    },
    {
      // repeat_kv gives query head h the kv head h // (H / Hkv); a modulo mapping (h % Hkv) is what the engine
      // computes on query heads reordered [0, 2, 1, 3] (with o_proj's columns to match).
      name: 'GQA query head h reading kv head h % Hkv',
      apply: (cfg, t) => [cfg, permuteHeads(t, cfg, [0, 2, 1, 3])],
    },
    { name: 'RMSNorm with the default epsilon (1e-6) instead of config.json\'s', apply: (cfg, t) => [{ ...cfg, normEps: 1e-6 }, t] },
    { name: 'rope_theta 10000 instead of config.json\'s', apply: (cfg, t) => [{ ...cfg, ropeTheta: 10000 }, t] },
  ];
  for (const d of drifts) {
    it(`fails for ${d.name}`, async () => {
      const m = models.get('tiny-llama-f32')!;
      const [cfg, tensors] = d.apply(m.cfg, m.tensors);
      const got = await allLogits(cfg, tensors, ref.tokens[0]);
      const want = ref.models['tiny-llama-f32'].logits.flat();
      expect(() => assertClose(got, want, FWD, d.name)).toThrow(/out of tolerance/);
      // Far outside, not marginally: at least 50x the bound somewhere.
      expect(maxDiff(got, want)).toBeGreaterThan(50 * (FWD.atol + FWD.rtol * 5));
    });
  }
});
