// The start screen: the task (arithmetic, or CommonsenseQA on a pretrained model: ./csqa_form.ts), its
// preset and knobs, and before anything runs an estimate of GPU memory and time, with the reason a run
// will not fit when it will not.

import { presetConfig } from '../model/config';
import { layoutParams } from '../model/params';
import { type StepSchedule, withMode } from '../star/config';
import { DEFAULT_PRESET, presetBase, RUN_PRESETS, type RunConfig, type RunPresetName, validateRunConfig } from '../star/run_config';
import { type AnyRunConfig, isLocalModel } from '../star/run_configs';
import { TASK_NAMES, taskNamed } from '../star/tasks/registry';
import { MODES, type Mode } from '../star/types';
import type { CsqaFiles, Estimate } from '../worker/api';
import { csqaForm } from './csqa_form';
import { card, field, fill, h } from './dom';
import { count, duration, formatBytes, pct } from './format';

const PRESET_NOTES: Partial<Record<string, string>> = {
  micro: 'a smoke test of the machinery',
  five: 'the paper’s digit range',
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
  estimate(cfg: AnyRunConfig, files?: CsqaFiles): Promise<Estimate>;
  start(cfg: AnyRunConfig, name: string, files?: CsqaFiles): Promise<void>;
  /** The task picked on the form changed. */
  onTask?(task: AnyRunConfig['task']): void;
}

export interface StartForm {
  el: HTMLElement;
  /** Whether a run may start now (not while another one is going, or without a GPU). */
  setAvailable(ok: boolean, why?: string): void;
}

/** The step schedule the form's three knobs describe; an 'epochs' schedule keeps the preset's floor. */
function stepsOf(preset: StepSchedule, kind: string, first: number, second: number): StepSchedule {
  if (kind === 'add') return { kind: 'add', start: first, increment: second };
  if (kind === 'multiply') return { kind: 'multiply', start: first, factor: second };
  const min = preset.kind === 'epochs' ? Math.min(preset.min, second) : Math.min(40, second);
  return { kind: 'epochs', epochs: first, min, max: second };
}

const num = (value: number, min: number, max: number, step = 1) => h('input', { type: 'number', value: String(value), min: String(min), max: String(max), step: String(step) });

export function startForm(deps: StartDeps): StartForm {
  const preset = h('select', { testid: 'preset' }, ...Object.keys(RUN_PRESETS).map((p) => h('option', { value: p, text: presetLabel(p) })));
  preset.value = DEFAULT_PRESET;
  // A preset that ships its base model starts at iteration 1; training it from scratch is the other choice.
  const baseChoice = h('select', { testid: 'base-model' },
    h('option', { value: 'shipped', text: 'the shipped base model: start at iteration 1' }),
    h('option', { value: 'scratch', text: 'train it from scratch first (the seed phase)' }),
  );
  const baseField = field('Base model', baseChoice);
  const mode = h('select', { testid: 'mode' }, ...MODES.slice().reverse().map((m) => h('option', { value: m, text: MODE_LABELS[m] })));
  const minD = num(1, 1, 15);
  const maxD = num(2, 1, 15);
  const iterations = num(2, 0, 100);
  const temperature = num(0, 0, 2, 0.1);
  const schedule = h(
    'select', {},
    h('option', { value: 'epochs', text: 'follow what was kept (epochs)' }),
    h('option', { value: 'multiply', text: 'grow by a factor' }),
    h('option', { value: 'add', text: 'grow by a constant' }),
  );
  const startLabel = h('span', { class: 'field-label' });
  const stepStart = num(40, 1, 100000);
  const stepGrow = num(1.2, 0, 100000, 0.05);
  const growLabel = h('span', { class: 'field-label' });
  const seed = num(1, 0, 2 ** 31);
  const name = h('input', { type: 'text', placeholder: 'optional', maxLength: 80 });
  const model = h('p', { class: 'small muted' });
  const estimate = h('div', { class: 'estimate', testid: 'estimate', attrs: { 'aria-live': 'polite' } });
  const startBtn = h('button', { class: 'primary big', testid: 'start', text: 'Start run', type: 'button' });
  const blocked = h('p', { class: 'small muted', hidden: true });
  let available = true;
  let refusal: string | null = null;

  /** Puts a preset's values into the knobs. */
  const load = () => {
    const c = RUN_PRESETS[preset.value as RunPresetName] as RunConfig;
    baseChoice.value = presetBase(preset.value) === 'scratch' ? 'scratch' : 'shipped';
    baseField.hidden = presetBase(preset.value) === 'scratch';
    mode.value = c.star.mode;
    minD.value = String(c.star.minDigits);
    maxD.value = String(c.star.maxDigits);
    iterations.value = String(c.star.iterations);
    temperature.value = String(c.star.temperature);
    const st = c.star.steps;
    schedule.value = st.kind;
    stepStart.value = String(st.kind === 'epochs' ? st.epochs : st.start);
    stepGrow.value = String(st.kind === 'multiply' ? st.factor : st.kind === 'add' ? st.increment : st.max);
    seed.value = String(c.star.seed);
  };

  /** The arithmetic config the knobs describe (validated: throws a message naming the bad field). */
  const arithmeticConfig = (): RunConfig => {
    const base = structuredClone(RUN_PRESETS[preset.value as RunPresetName]) as RunConfig;
    const [lo, hi] = [Number(minD.value), Number(maxD.value)];
    const grow = Number(stepGrow.value);
    const seedMax = Math.min(base.star.seedMaxDigits, hi);
    const shipped = presetBase(preset.value);
    const star = {
      ...withMode(base.star, mode.value as Mode),
      minDigits: lo,
      maxDigits: hi,
      // The seed set stays small (the base model starts on short sums), within the chosen range.
      seedMinDigits: Math.min(base.star.seedMinDigits, seedMax),
      seedMaxDigits: seedMax,
      iterations: Number(iterations.value),
      temperature: Number(temperature.value),
      steps: stepsOf(base.star.steps, schedule.value, Number(stepStart.value), grow),
      seed: Number(seed.value),
    };
    const cfg: RunConfig = { ...base, star, base: baseChoice.value === 'scratch' ? 'scratch' : shipped };
    validateRunConfig(cfg);
    return cfg;
  };

  const csqa = csqaForm((slow) => refresh(slow ? 700 : undefined));
  const taskRadios = new Map<AnyRunConfig['task'], HTMLInputElement>();
  const task = () => (taskRadios.get('csqa')!.checked ? 'csqa' : 'arithmetic');
  const config = (): AnyRunConfig => (task() === 'csqa' ? csqa.config() : arithmeticConfig());
  const files = () => (task() === 'csqa' ? csqa.files() : undefined);

  const showEstimate = (e: Estimate) => {
    const m = e.memory;
    const c = e.csqa;
    const lora = m.frozenParams > 0;
    const rows: [string, string][] = c
      ? [
          [lora ? 'Pretrained weights (frozen)' : 'Pretrained weights', formatBytes(lora ? m.frozenParams : m.params)],
          [lora ? 'LoRA adapters, gradients, AdamW' : 'Gradients, AdamW', formatBytes(m.grads + m.optimizer + (lora ? m.trainableParams : 0))],
          ['Activations (training)', m.activations > 0 ? formatBytes(m.activations) : 'once the questions are read'],
          [`Generation (KV cache, ${c.genBatch} at a time)`, formatBytes(m.kvCache)],
        ]
      : [
          ['Parameters, gradients, AdamW', formatBytes(m.params + m.grads + m.optimizer)],
          ['Activations (training)', formatBytes(m.activations)],
          ['Generation (KV cache)', formatBytes(m.kvCache)],
        ];
    const time = e.seconds === null ? 'after 1 iteration' : `≈ ${duration(e.seconds)}`;
    const timeNote = e.seconds === null
      ? 'Time is shown once this device has finished an iteration of this model.'
      : e.calibrated ? 'Time measured on this device.' : 'Time is a rough guess until this device has finished an iteration.';
    fill(
      estimate,
      h('div', { class: 'estimate-head' },
        h('div', {}, h('span', { class: 'estimate-label', text: 'GPU memory' }), h('strong', { testid: 'estimate-memory', text: formatBytes(m.total) })),
        h('div', {}, h('span', { class: 'estimate-label', text: 'Time' }), h('strong', { text: time })),
      ),
      h('dl', { class: 'estimate-rows' }, ...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })])),
      c ? h('p', { class: 'small', testid: 'estimate-model', text: `${c.source}: ${c.description}.` }) : null,
      c && c.downloadBytes !== null && !isLocalModel(c.config) ? h('p', { class: 'small muted', text: `Downloads about ${formatBytes(c.downloadBytes)} of weights once; this browser keeps them for later visits, offline too.` }) : null,
      c?.questions ? h('p', { class: 'small muted', testid: 'estimate-questions', text: `${count(c.questions.train)} questions in the training pool (${count(c.config.star.trainSize)} per iteration), ${count(c.questions.eval)} held out (${count(c.config.star.evalSize)} evaluated).` }) : null,
      h('p', { class: 'small muted', text: `${count(e.trainSteps)} training steps${e.trainSeq > 0 ? ` of sequences up to ${e.trainSeq} tokens` : ''}, ${count(e.decodeSteps)} decode steps at most. ${timeNote}` }),
      e.refusal ? h('p', { class: 'refusal', testid: 'refusal', attrs: { role: 'alert' } }, h('strong', { text: 'This run will not fit. ' }), e.refusal) : null,
    );
    refusal = e.refusal;
    sync();
  };

  const problem = (title: string, message: string) => {
    refusal = message;
    fill(estimate, h('p', { class: 'refusal', testid: 'refusal', attrs: { role: 'alert' } }, h('strong', { text: title }), message));
    sync();
  };

  let token = 0;
  let checking = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Re-estimates `delay` ms after the last change; the estimate's data-state says whether it is current. */
  const refresh = (delay = 120) => {
    clearTimeout(timer);
    estimate.dataset.state = 'waiting';
    timer = setTimeout(async () => {
      const mine = ++token;
      growLabel.textContent = { add: 'steps added per iteration', multiply: 'factor per iteration', epochs: 'at most, steps' }[schedule.value] ?? '';
      startLabel.textContent = schedule.value === 'epochs' ? 'epochs over the kept set' : 'first iteration';
      arithmeticPart.hidden = task() !== 'arithmetic';
      csqa.el.hidden = task() !== 'csqa';
      let cfg: AnyRunConfig;
      try {
        cfg = config();
      } catch (e) {
        estimate.dataset.state = 'ready';
        return problem('Check the settings. ', (e as Error).message.replace(/^Invalid [\w ]*config:\s*/, ''));
      }
      if (cfg.task === 'arithmetic') {
        const params = layoutParams(presetConfig(cfg.model)).segmentSizes.reduce((a, b) => a + b, 0);
        const s = cfg.star;
        const origin = cfg.base === 'scratch'
          ? `trained from scratch first, until it solves ${pct(s.seedTarget || 1, 0)} of held-out ${s.seedMinDigits}–${s.seedMaxDigits} digit sums (at most ${count(s.seedSteps)} steps)`
          : `the shipped base model, trained ahead of time on ${s.seedMinDigits}–${s.seedMaxDigits} digit sums`;
        model.textContent = `Model: “${cfg.model}”, ${count(params)} parameters; ${origin}. Train batch ${cfg.trainBatch}, generation batch ${cfg.genBatch}.`;
      } else {
        model.textContent = '';
        checking = true;
        sync();
        fill(estimate, h('p', { class: 'small muted', testid: 'estimate-pending', text: 'Reading the model’s config.json, its tokenizer and the questions (small files, kept for later)…' }));
      }
      try {
        const e = await deps.estimate(cfg, files());
        if (mine === token) showEstimate(e);
      } catch (e) {
        if (mine === token) problem(cfg.task === 'csqa' ? 'This run cannot start. ' : '', (e as Error).message);
      } finally {
        if (mine === token) {
          checking = false;
          estimate.dataset.state = 'ready';
          sync();
        }
      }
    }, delay);
  };

  const sync = () => {
    startBtn.disabled = !available || refusal !== null || checking;
  };

  preset.addEventListener('change', () => {
    load();
    refresh();
  });
  for (const c of [mode, minD, maxD, iterations, temperature, schedule, stepStart, stepGrow, seed, baseChoice]) c.addEventListener('input', () => refresh());
  startBtn.addEventListener('click', async () => {
    startBtn.disabled = true;
    try {
      await deps.start(config(), name.value.trim(), files());
    } finally {
      sync();
    }
  });

  const choice = (value: AnyRunConfig['task'], title: string, note: string) => {
    const radio = h('input', { type: 'radio', name: 'task', value, checked: value === 'arithmetic', testid: `task-${value}` });
    radio.addEventListener('change', () => {
      deps.onTask?.(task());
      refresh();
    });
    taskRadios.set(value, radio);
    return h('label', { class: 'choice' }, radio, h('span', {}, h('strong', { text: title }), h('span', { class: 'small muted block', text: note })));
  };
  const taskField = h('fieldset', { class: 'task' },
    h('legend', { class: 'field-label', text: 'Task' }),
    ...TASK_NAMES.map((t) => choice(t, taskNamed(t).title, taskNamed(t).blurb)),
  );
  const arithmeticPart = h('div', { class: 'start-form' },
    field('Preset', preset),
    baseField,
    field('Mode', mode),
    h('div', { class: 'row' }, field('Digits from', minD), field('to', maxD), field('Iterations', iterations)),
    h('div', { class: 'row' }, field('Temperature', temperature, '0 = greedy'), field('Seed', seed)),
    field('Fine-tune steps per iteration', schedule),
    h('div', { class: 'row' }, h('label', { class: 'field' }, startLabel, stepStart), h('label', { class: 'field' }, growLabel, stepGrow)),
  );
  csqa.el.hidden = true;

  const el = card(
    'New run',
    h('form', { class: 'start-form', on: { submit: (e) => e.preventDefault() } },
      taskField,
      arithmeticPart,
      csqa.el,
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
