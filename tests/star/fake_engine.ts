// A scripted STaR engine and a run helper, shared by the loop's tests (tests/star/loop*.test.ts).
import { parseSafetensors, tensorToF32, writeSafetensors } from '../../src/hub/safetensors';
import { STAR_PRESETS, type StarConfig } from '../../src/star/config';
import { runStar } from '../../src/star/loop';
import { MemoryStore } from '../../src/star/stores/memory';
import { makeProblem, type Problem, scratchpad } from '../../src/star/tasks/arithmetic';
import { arithmeticTask } from '../../src/star/tasks/arithmetic_task';
import { arithmeticTokenizer as tok } from '../../src/star/tasks/char_tokenizer';
import type { Example, FinetuneOptions, GenOptions, RunStore, StarEngine, StarEvent, TaskAdapter } from '../../src/star/types';

export const PROMPT = /^\n?Input:\n([\d ]+) \+ ([\d ]+)\nTarget:(?: ([\d ]+))?\n$/;

export function parsePrompt(prompt: string): { p: Problem; hinted: boolean } {
  const m = PROMPT.exec(prompt);
  if (!m) throw new Error(`fake engine: not an arithmetic prompt: ${JSON.stringify(prompt)}`);
  const num = (s: string) => Number(s.replace(/ /g, ''));
  return { p: makeProblem(num(m[1]), num(m[2])), hinted: m[3] !== undefined };
}

/**
 * A scripted model. It solves problems of up to `level` digits, one digit more when shown the hint, and
 * writes a scratchpad with a wrong answer otherwise; fine-tuning raises `level` to the largest problem
 * trained on. Its weights are real safetensors bytes holding (level, fine-tunes so far, seed), and it
 * records every call, with the weights each fine-tune started from.
 */
export class FakeEngine implements StarEngine {
  level = 0;
  finetunes = 0;
  seed = 0;
  log: string[] = [];
  /** `finetunesBefore`: how many fine-tunes ran before this call. */
  generateCalls: { prompts: string[]; opts: GenOptions; level: number; finetunesBefore: number }[] = [];
  finetuneCalls: { examples: Example[]; steps: number; startedFrom: Uint8Array }[] = [];
  /** Fine-tune call (0 = the seed phase) that crashes at its second step. */
  crashFinetune?: number;
  /** Generate call that crashes. */
  crashGenerate?: number;
  /** Steps a fine-tune takes before the model solves what it trains on (the seed phase's mastery check sees it). */
  stepsToLearn = 1;
  /** Hinted one digit past its level, it writes a wrong scratchpad and copies the hinted answer (what a weak model does). */
  sloppyHints = false;
  /** Sequences per training step (the 'epochs' schedule reads it). */
  trainBatch = 8;

  private bytes(): Uint8Array {
    return writeSafetensors([{ name: 'state', data: new Float32Array([this.level, this.finetunes, this.seed]), shape: [3] }]);
  }

  async initRandom(seed: number) {
    this.log.push('initRandom');
    [this.level, this.finetunes, this.seed] = [0, 0, seed];
  }

  async loadWeights(bytes: Uint8Array) {
    this.log.push('loadWeights');
    [this.level, this.finetunes, this.seed] = tensorToF32(parseSafetensors(bytes), 'state');
  }

  async saveWeights() {
    this.log.push('saveWeights');
    return this.bytes();
  }

  complete(prompt: string): string {
    const { p, hinted } = parsePrompt(prompt);
    if (p.digits <= this.level) return scratchpad(p);
    const lines = scratchpad(p).split('\n');
    if (hinted && p.digits === this.level + 1) {
      if (!this.sloppyHints) return scratchpad(p);
      lines[2] = lines[2].replace(/, (\d)/, (_, d: string) => `, ${(Number(d) + 1) % 10}`); // a wrong sum digit, the right answer
      return lines.join('\n');
    }
    lines[lines.length - 2] = [...String(p.a + p.b + 1)].join(' ');
    return lines.join('\n');
  }

  async generate(prompts: string[], opts: GenOptions) {
    this.log.push('generate');
    const call = this.generateCalls.push({ prompts, opts, level: this.level, finetunesBefore: this.finetuneCalls.length }) - 1;
    if (call === this.crashGenerate) throw new Error('fake engine: device lost');
    return prompts.map((prompt, i) => {
      opts.signal?.throwIfAborted(); // one prompt = one "batch"
      const text = this.complete(prompt);
      const tokens = tok.encode(text).length + 1; // + EOS
      if (tokens > opts.maxNewTokens) throw new Error(`fake engine: ${tokens} tokens exceed maxNewTokens ${opts.maxNewTokens}`);
      opts.onSample?.(i, text.slice(0, 12), false);
      opts.onSample?.(i, text, true);
      opts.onProgress?.(i + 1, prompts.length);
      return { text, tokens };
    });
  }

  async finetune(examples: Example[], opts: FinetuneOptions) {
    this.log.push('finetune');
    const call = this.finetuneCalls.push({ examples: structuredClone(examples), steps: opts.steps, startedFrom: this.bytes() }) - 1;
    const losses: number[] = [];
    const from = this.level;
    let step = 0;
    while (step < opts.steps) {
      step++;
      opts.signal?.throwIfAborted();
      if (call === this.crashFinetune && step === 2) throw new Error('fake engine: crashed mid-finetune');
      losses.push(1 / step);
      opts.onStep?.(step, 1 / step);
      if (step >= this.stepsToLearn) for (const ex of examples) this.level = Math.max(this.level, parsePrompt(ex.prompt).p.digits);
      else this.level = from;
      if (opts.until && (step % opts.until.every === 0 || step === opts.steps) && (await opts.until.done(step))) break;
    }
    this.finetunes++;
    return { losses, tokens: examples.reduce((n, ex) => n + tok.encode(ex.prompt + ex.target).length + 2, 0), steps: step };
  }
}

// Seed set 1-2 digits, so the base model solves 1-2 digit problems; training spans 1-4.
export const CFG: StarConfig = { ...STAR_PRESETS.micro, maxDigits: 4, iterations: 3, trainSize: 40, poolSize: 80, evalSize: 40 };
export const task = arithmeticTask(CFG);

export interface RunOpts {
  task?: TaskAdapter<Problem>;
  engine?: FakeEngine;
  store?: RunStore;
  signal?: AbortSignal;
  onEvent?: (e: StarEvent, signal?: AbortSignal) => void;
}

export async function run(cfg: StarConfig, o: RunOpts = {}) {
  const engine = o.engine ?? new FakeEngine();
  const store = o.store ?? new MemoryStore();
  const events: StarEvent[] = [];
  let t = 0;
  const summary = await runStar(cfg, {
    task: o.task ?? task, engine, store, signal: o.signal,
    onProgress: (e) => {
      events.push(e);
      o.onEvent?.(e);
    },
    now: () => (t += 1000), // every phase "takes" one second, so summaries compare exactly
  });
  return { summary, engine, store, events };
}

