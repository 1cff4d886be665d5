// Runs made without a GPU: a scripted StarEngine that answers arithmetic prompts by rule (right when the
// sum is not a multiple of 3 or a hint is given, wrong otherwise), so every phase of the real loop runs
// and stores realistic outputs in milliseconds.

import { writeSafetensors } from '../../src/hub/safetensors';
import { presetConfig } from '../../src/model/config';
import { initParams, layoutParams } from '../../src/model/params';
import { runStar } from '../../src/star/loop';
import { type RunConfig, runConfig } from '../../src/star/run_config';
import { MemoryStore } from '../../src/star/stores/memory';
import { makeProblem, scratchpad } from '../../src/star/tasks/arithmetic';
import { arithmeticTask } from '../../src/star/tasks/arithmetic_task';
import type { GenOptions, RunStore, StarEngine } from '../../src/star/types';
import type { RunArchive } from '../../src/storage/archive';
import { newRunMeta, type RunMeta } from '../../src/storage/runs';

/** The micro model's weights (valid safetensors with the layout the model needs). */
export function microWeights(seed = 1): Uint8Array {
  const cfg = presetConfig('micro');
  const tensors = initParams(cfg, seed);
  return writeSafetensors(layoutParams(cfg).entries.map((e) => ({ name: e.name, data: tensors.get(e.name)!, shape: e.shape })), { format: 'pt' });
}

export interface FakeEngineOptions {
  /** Awaited before each generate batch and training step (a place to stall, fail or pause). */
  tick?: () => Promise<void>;
  /** Rewrites a correct completion's scratchpad (the answer line is kept, so it stays correct). */
  decorate?: (scratch: string) => string;
}

const PROMPT = /^Input:\n([\d ]+) \+ ([\d ]+)\nTarget:(.*)\n$/;

export function fakeEngine(opts: FakeEngineOptions = {}): StarEngine & { calls: string[] } {
  const tick = opts.tick ?? (() => Promise.resolve());
  const calls: string[] = [];
  let weights = microWeights(1);
  const answer = (prompt: string): string => {
    const m = PROMPT.exec(prompt);
    if (!m) throw new Error(`fake engine: not an arithmetic prompt: ${JSON.stringify(prompt)}`);
    const p = makeProblem(Number(m[1].replace(/ /g, '')), Number(m[2].replace(/ /g, '')));
    const right = m[3] !== '' || (p.a + p.b) % 3 !== 0;
    if (!right) return '<scratch>\n</scratch>\n0\n';
    const text = scratchpad(p);
    return opts.decorate ? text.replace('<scratch>\n', `<scratch>\n${opts.decorate(text)}\n`) : text;
  };
  return {
    calls,
    async initRandom(seed) {
      calls.push('initRandom');
      weights = microWeights(seed);
    },
    async generate(prompts: string[], g: GenOptions) {
      calls.push(`generate ${prompts.length}`);
      const out: { text: string; tokens: number }[] = [];
      for (let i = 0; i < prompts.length; i++) {
        if (i % 4 === 0) {
          await tick();
          if (g.signal?.aborted) throw g.signal.reason;
        }
        const text = answer(prompts[i]);
        g.onSample?.(i, text, true);
        out.push({ text, tokens: text.length });
        g.onProgress?.(i + 1, prompts.length);
      }
      return out;
    },
    async finetune(examples, f) {
      calls.push(`finetune ${examples.length}x${f.steps}`);
      const losses: number[] = [];
      for (let s = 1; s <= f.steps; s++) {
        await tick();
        if (f.signal?.aborted) throw f.signal.reason;
        losses.push(2 / s);
        f.onStep?.(s, 2 / s);
      }
      return { losses, tokens: examples.length * 40 };
    },
    async saveWeights() {
      return weights.slice();
    },
    async loadWeights(bytes) {
      weights = bytes.slice();
    },
  };
}

/** The micro preset, with overrides to the STaR settings. */
export function microConfig(star: Partial<RunConfig['star']> = {}): RunConfig {
  const cfg = runConfig('micro');
  return { ...cfg, star: { ...cfg.star, ...star } };
}

/** Runs the real loop with the fake engine into `store`. */
export function fakeRun(cfg: RunConfig, store: RunStore, opts: FakeEngineOptions = {}) {
  return runStar(cfg.star, { task: arithmeticTask(cfg.star), engine: fakeEngine(opts), store, now: () => 0 });
}

/** A finished fake run as an archive (what the browser exports), with its record. */
export async function fakeArchive(name: string, cfg = microConfig(), opts: FakeEngineOptions = {}): Promise<{ meta: RunMeta; archive: RunArchive }> {
  const store = new MemoryStore();
  const summary = await fakeRun(cfg, store, opts);
  const phases: RunArchive['phases'] = [];
  for (const key of store.phaseKeys()) {
    const [it, phase] = key.split('/') as [string, RunArchive['phases'][number]['phase']];
    phases.push({ iteration: Number(it), phase, value: await store.getPhase(Number(it), phase) });
  }
  const archive: RunArchive = {
    name, config: cfg, phases,
    docs: { 'star-config': await store.getJSON('star-config'), summary },
    weights: { base: (await store.getWeights('base'))!, latest: (await store.getWeights('latest'))! },
  };
  const meta: RunMeta = { ...newRunMeta('fixture', name, cfg, 'browser'), status: 'done', iterations: summary.iterations, finalAccuracy: summary.finalAccuracy };
  return { meta, archive };
}
