// The model panel of a CommonsenseQA run: what is being loaded, then what was loaded, and one byte
// progress bar per file (downloaded from the Hub, read from this browser's cache, or from the files
// stored with the run). Hidden until the run's session reports its model.

import type { EngineEvent } from '../worker/api';
import { h, setText } from './dom';
import { formatBytes } from './format';

type ModelEvent = Extract<EngineEvent, { kind: 'model' | 'download' }>;

export interface DownloadsPanel {
  el: HTMLElement;
  event(e: ModelEvent): void;
  clear(): void;
}

export function downloadsPanel(): DownloadsPanel {
  const status = h('p', { class: 'small', testid: 'model-status' });
  const list = h('ul', { class: 'downloads', testid: 'downloads' });
  const el = h('div', { class: 'panel', hidden: true }, h('h3', { text: 'Model' }), status, list);
  const rows = new Map<string, { bar: HTMLElement; note: HTMLElement; row: HTMLElement }>();

  const row = (file: string) => {
    let r = rows.get(file);
    if (!r) {
      const bar = h('div', { class: 'bar-fill' });
      const note = h('span', { class: 'phase-note' });
      const li = h('li', { class: 'phase download', testid: 'download-row', attrs: { 'data-file': file } },
        h('span', { class: 'phase-name', text: file, title: file }), h('div', { class: 'bar', attrs: { role: 'progressbar', 'aria-label': file } }, bar), note);
      r = { bar, note, row: li };
      rows.set(file, r);
      list.append(li);
    }
    return r;
  };

  return {
    el,
    event(e) {
      el.hidden = false;
      if (e.kind === 'model') {
        setText(status, e.text);
        return;
      }
      const r = row(e.file);
      const frac = e.total > 0 ? Math.min(1, e.loaded / e.total) : 0;
      r.bar.style.width = `${(100 * frac).toFixed(1)}%`;
      r.bar.parentElement!.setAttribute('aria-valuenow', String(Math.round(100 * frac)));
      const done = e.total > 0 && e.loaded >= e.total;
      r.row.classList.toggle('finished', done);
      setText(r.note, e.cached ? `${formatBytes(e.loaded)}, kept` : done ? formatBytes(e.total) : `${formatBytes(e.loaded)} / ${e.total > 0 ? formatBytes(e.total) : '?'}`);
    },
    clear() {
      rows.clear();
      list.replaceChildren();
      status.textContent = '';
      el.hidden = true;
    },
  };
}
