// The live stream of rationales as the model writes them, newest first, each marked correct, wrong,
// rationalized (written with the answer as a hint) or eval. All of it is model output: text only.

import type { EngineEvent } from '../worker/api';
import { card, h } from './dom';

type Sample = Extract<EngineEvent, { kind: 'sample' }>;

const KEEP = 30;

export function verdict(s: { phase: string; correct: boolean | null; hinted: boolean }): { label: string; cls: string } {
  if (s.phase === 'evaluate') return s.correct ? { label: 'eval ✓', cls: 'eval-ok' } : { label: 'eval ✗', cls: 'eval-bad' };
  if (s.hinted) return s.correct ? { label: 'rationalized', cls: 'rationalized' } : { label: 'hinted, wrong', cls: 'wrong' };
  return s.correct ? { label: 'correct', cls: 'correct' } : { label: 'wrong', cls: 'wrong' };
}

/** "2 9 + 5 7" from "Input:\n2 9 + 5 7\nTarget:\n"; a CommonsenseQA prompt's last question (after any few-shot exemplars). */
export function problemLine(prompt: string): string {
  const lines = prompt.split('\n');
  if (lines[0] === 'Input:' && lines[1] !== undefined) return lines[1];
  const q = lines.filter((l) => l.startsWith('Q: ')).at(-1);
  return q !== undefined ? q.slice(3) : prompt.trim();
}

/** A rationale as text; an empty one says so. */
export function rationaleText(text: string): HTMLElement {
  if (text.trim() !== '') return h('pre', { class: 'rationale', text });
  return h('pre', { class: 'rationale empty', text: text === '' ? '(empty: the model wrote nothing)' : `(blank: the model wrote only ${JSON.stringify(text).slice(1, -1).slice(0, 40)})` });
}

export interface RationaleStream {
  el: HTMLElement;
  push(s: Sample): void;
  clear(): void;
}

export function rationaleStream(): RationaleStream {
  const list = h('ol', { class: 'stream', testid: 'rationale-stream', attrs: { 'aria-live': 'off' } });
  const empty = h('p', { class: 'muted small', text: 'Rationales appear here as they are generated.' });
  const counts = h('span', { class: 'small muted' });
  let seen = { correct: 0, wrong: 0, rationalized: 0 };
  const el = card('Rationales, live', h('div', { class: 'stream-head' }, counts), empty, list);
  el.classList.add('stream-card');
  const showCounts = () => (counts.textContent = `${seen.correct} correct · ${seen.wrong} wrong · ${seen.rationalized} rationalized (shown: the latest ${KEEP})`);
  return {
    el,
    push(s) {
      const v = verdict(s);
      if (s.phase !== 'evaluate') {
        if (v.cls === 'correct') seen.correct++;
        else if (v.cls === 'rationalized') seen.rationalized++;
        else seen.wrong++;
      }
      showCounts();
      empty.hidden = true;
      const item = h('li', { class: `stream-item ${v.cls}` },
        h('div', { class: 'stream-meta' },
          h('span', { class: `verdict ${v.cls}`, text: v.label }),
          h('span', { class: 'problem', text: problemLine(s.prompt) }),
          h('span', { class: 'small muted', text: `iteration ${s.iteration} · ${s.phase}` }),
        ),
        rationaleText(s.text),
      );
      list.prepend(item);
      while (list.childElementCount > KEEP) list.lastElementChild!.remove();
    },
    clear() {
      list.replaceChildren();
      empty.hidden = false;
      seen = { correct: 0, wrong: 0, rationalized: 0 };
      counts.textContent = '';
    },
  };
}
