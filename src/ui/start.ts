// The start screen: task, preset, the main knobs, and before anything runs an estimate of GPU memory and
// time, with the reason a run will not fit when it will not.

import { presetConfig } from '../model/config';
import { layoutParams } from '../model/params';
import { withMode } from '../star/config';
import { RUN_PRESETS, type RunConfig, type RunPresetName, validateRunConfig } from '../star/run_config';
import { MODES, type Mode } from '../star/types';
import type { Estimate } from '../worker/api';
import { card, field, fill, h } from './dom';
import { count, duration, formatBytes } from './format';

const PRESET_NOTES: Partial<Record<string, string>> = {
  micro: 'a smoke test of the machinery',
  quick: 'a quick demo',
  'paper-like': 'the paper’s schedule',
};

/** "Quick: 1–4 digits, 8 iterations (a quick demo)". */
function presetLabel(name: string): string {
  const s = (RUN_PRESETS[name as RunPresetName] as RunConfig).star;
  const note = PRESET_NOTES[name];
  return `${name[0].toUpperCase()}${name.slice(1)}: ${s.minDigits}–${s.maxDigits} digits, ${s.iterations} iterations${note ? ` (${note})` : ''}`;
}

const MODE_LABELS: Record<Mode, string> = {
  star: 'STaR (with rationalization)',
  'star-no-rationalization': 'STaR without rationalization',
  direct: 'Direct (answers only, no rationales)',
  base: 'Base model only',
};

export interface StartDeps {
  estimate(cfg: RunConfig): Promise<Estimate>;
  start(cfg: RunConfig, name: string): Promise<void>;
}

export interface StartForm {
  el: HTMLElement;
  /** Whether a run may start now (not while another one is going, or without a GPU). */
  setAvailable(ok: boolean, why?: string): void;
}

const num = (value: number, min: number, max: number, step = 1) => h('input', { type: 'number', value: String(value), min: String(min), max: String(max), step: String(step) });

export function startForm(deps: StartDeps): StartForm {
  const preset = h('select', { testid: 'preset' }, ...Object.keys(RUN_PRESETS).map((p) => h('option', { value: p, text: presetLabel(p) })));
  preset.value = 'micro';
  const mode = h('select', { testid: 'mode' }, ...MODES.slice().reverse().map((m) => h('option', { value: m, text: MODE_LABELS[m] })));
  const minD = num(1, 1, 15);
  const maxD = num(2, 1, 15);
  const iterations = num(2, 0, 100);
  const temperature = num(0, 0, 2, 0.1);
  const schedule = h('select', {}, h('option', { value: 'multiply', text: 'grow by a factor' }), h('option', { value: 'add', text: 'grow by a constant' }));
  const stepStart = num(40, 1, 100000);
  const stepGrow = num(1.2, 0, 1000, 0.05);
  const growLabel = h('span', { class: 'field-label' });
  const seed = num(1, 0, 2 ** 31);
  const name = h('input', { type: 'text', placeholder: 'optional', maxLength: 80 });
  const model = h('p', { class: 'small muted' });
  const estimate = h('div', { class: 'estimate', attrs: { 'aria-live': 'polite' } });
  const startBtn = h('button', { class: 'primary big', testid: 'start', text: 'Start run', type: 'button' });
  const blocked = h('p', { class: 'small muted', hidden: true });
  let available = true;
  let refusal: string | null = null;

  /** Puts a preset's values into the knobs. */
  const load = () => {
    const c = RUN_PRESETS[preset.value as RunPresetName] as RunConfig;
    mode.value = c.star.mode;
    minD.value = String(c.star.minDigits);
    maxD.value = String(c.star.maxDigits);
    iterations.value = String(c.star.iterations);
    temperature.value = String(c.star.temperature);
    schedule.value = c.star.steps.kind;
    stepStart.value = String(c.star.steps.start);
    stepGrow.value = String(c.star.steps.kind === 'multiply' ? c.star.steps.factor : c.star.steps.increment);
    seed.value = String(c.star.seed);
  };

  /** The config the knobs describe (validated: throws a message naming the bad field). */
  const config = (): RunConfig => {
    const base = structuredClone(RUN_PRESETS[preset.value as RunPresetName]) as RunConfig;
    const [lo, hi] = [Number(minD.value), Number(maxD.value)];
    const grow = Number(stepGrow.value);
    const seedMax = Math.min(base.star.seedMaxDigits, hi);
    const star = {
      ...withMode(base.star, mode.value as Mode),
      minDigits: lo,
      maxDigits: hi,
      // The seed set stays small (the base model starts on short sums), within the chosen range.
      seedMinDigits: Math.min(base.star.seedMinDigits, seedMax),
      seedMaxDigits: seedMax,
      iterations: Number(iterations.value),
      temperature: Number(temperature.value),
      steps: schedule.value === 'add' ? { kind: 'add' as const, start: Number(stepStart.value), increment: grow } : { kind: 'multiply' as const, start: Number(stepStart.value), factor: grow },
      seed: Number(seed.value),
    };
    const cfg = { ...base, star };
    validateRunConfig(cfg);
    return cfg;
  };

  const showEstimate = (e: Estimate) => {
    const m = e.memory;
    const rows: [string, string][] = [
      ['Parameters, gradients, AdamW', formatBytes(m.params + m.grads + m.optimizer)],
      ['Activations (training)', formatBytes(m.activations)],
      ['Generation (KV cache)', formatBytes(m.kvCache)],
    ];
    fill(
      estimate,
      h('div', { class: 'estimate-head' },
        h('div', {}, h('span', { class: 'estimate-label', text: 'GPU memory' }), h('strong', { text: formatBytes(m.total) })),
        h('div', {}, h('span', { class: 'estimate-label', text: 'Time' }), h('strong', { text: `≈ ${duration(e.seconds)}` })),
      ),
      h('dl', { class: 'estimate-rows' }, ...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })])),
      h('p', { class: 'small muted', text: `${count(e.trainSteps)} training steps of sequences up to ${e.trainSeq} tokens, ${count(e.decodeSteps)} decode steps. ${e.calibrated ? 'Time measured on this device.' : 'Time is a rough guess until this device has finished an iteration.'}` }),
      e.refusal ? h('p', { class: 'refusal', attrs: { role: 'alert' } }, h('strong', { text: 'This run will not fit. ' }), e.refusal) : null,
    );
    refusal = e.refusal;
    sync();
  };

  let token = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++token;
      growLabel.textContent = schedule.value === 'add' ? 'steps added per iteration' : 'factor per iteration';
      let cfg: RunConfig;
      try {
        cfg = config();
      } catch (e) {
        refusal = (e as Error).message.replace(/^Invalid STaR config:\s*/, '');
        fill(estimate, h('p', { class: 'refusal', attrs: { role: 'alert' } }, h('strong', { text: 'Check the settings. ' }), refusal));
        return sync();
      }
      const params = layoutParams(presetConfig(cfg.model)).segmentSizes.reduce((a, b) => a + b, 0);
      model.textContent = `Model: “${cfg.model}”, ${count(params)} parameters, trained from scratch. Train batch ${cfg.trainBatch}, generation batch ${cfg.genBatch}.`;
      try {
        const e = await deps.estimate(cfg);
        if (mine === token) showEstimate(e);
      } catch (e) {
        if (mine === token) fill(estimate, h('p', { class: 'refusal', text: (e as Error).message }));
      }
    }, 120);
  };

  const sync = () => {
    startBtn.disabled = !available || refusal !== null;
  };

  preset.addEventListener('change', () => {
    load();
    refresh();
  });
  for (const c of [mode, minD, maxD, iterations, temperature, schedule, stepStart, stepGrow, seed]) c.addEventListener('input', refresh);
  startBtn.addEventListener('click', async () => {
    startBtn.disabled = true;
    try {
      await deps.start(config(), name.value.trim());
    } finally {
      sync();
    }
  });

  const task = h('fieldset', { class: 'task' },
    h('legend', { class: 'field-label', text: 'Task' }),
    h('label', { class: 'choice' }, h('input', { type: 'radio', name: 'task', value: 'arithmetic', checked: true }), h('span', {}, h('strong', { text: 'Arithmetic' }), h('span', { class: 'small muted', text: ' n-digit addition with a scratchpad' }))),
    h('label', { class: 'choice disabled' }, h('input', { type: 'radio', name: 'task', value: 'csqa', disabled: true }),
      h('span', {}, h('strong', { text: 'CommonsenseQA' }), h('span', { class: 'badge', text: 'coming later' }),
        h('span', { class: 'small muted block', text: 'Will need SmolLM2-135M-Instruct downloaded from the Hugging Face Hub (about 270 MB, cached for later visits), the CommonsenseQA dataset (about 10k questions), and roughly 1.5 GB of GPU memory to fine-tune it.' }))),
  );

  const el = card(
    'New run',
    h('form', { class: 'start-form', on: { submit: (e) => e.preventDefault() } },
      task,
      field('Preset', preset),
      field('Mode', mode),
      h('div', { class: 'row' }, field('Digits from', minD), field('to', maxD), field('Iterations', iterations)),
      h('div', { class: 'row' }, field('Temperature', temperature, '0 = greedy'), field('Seed', seed)),
      field('Fine-tune steps per iteration', schedule),
      h('div', { class: 'row' }, field('first iteration', stepStart), h('label', { class: 'field' }, growLabel, stepGrow)),
      field('Name', name),
      model,
      estimate,
      startBtn,
      blocked,
    ),
  );
  load();
  refresh();
  return {
    el,
    setAvailable(ok, why) {
      available = ok;
      blocked.hidden = ok;
      blocked.textContent = why ?? '';
      sync();
    },
  };
}
