// The page header: what this is, which GPU runs it, and how much browser storage the runs use (with the
// button that asks the browser to keep them: navigator.storage.persist()).

import type { GpuInfo } from '../worker/api';
import { h } from './dom';
import { formatBytes } from './format';

export interface Header {
  el: HTMLElement;
  setGpu(info: GpuInfo | null, error?: string): void;
  refreshStorage(): Promise<void>;
}

export function header(): Header {
  const gpu = h('span', { class: 'pill', text: 'GPU: checking…' });
  const storage = h('span', { class: 'pill', testid: 'storage', text: 'storage: –' });
  const persist = h('button', { type: 'button', class: 'small-btn ghost', text: 'Keep my runs', hidden: true, title: 'Ask the browser not to evict stored runs when space runs low.' });
  const s = navigator.storage as StorageManager | undefined;

  const refreshStorage = async () => {
    if (!s?.estimate) return;
    const [{ usage = 0, quota = 0 }, persisted] = await Promise.all([s.estimate(), s.persisted?.() ?? Promise.resolve(false)]);
    storage.textContent = `storage: ${formatBytes(usage)} of ${formatBytes(quota)}${persisted ? ' · kept' : ''}`;
    storage.title = persisted ? 'The browser will keep these runs even when space runs low.' : 'The browser may evict these runs when space runs low.';
    persist.hidden = persisted || !s.persist;
  };
  persist.addEventListener('click', async () => {
    await s?.persist?.();
    await refreshStorage();
  });

  const el = h('header', { class: 'top' },
    h('div', { class: 'brand' },
      h('span', { class: 'logo', attrs: { 'aria-hidden': 'true' }, text: '★' }),
      h('div', {}, h('h1', { text: 'STaR, live on your GPU' }), h('p', { class: 'tagline', text: 'Watch a model teach itself to reason: the Self-Taught Reasoner loop, trained in this tab with WebGPU.' })),
    ),
    h('div', { class: 'top-pills' }, gpu, storage, persist),
  );
  return {
    el,
    setGpu(info, error) {
      gpu.textContent = info ? `GPU: ${info.description}` : error ? 'GPU: unavailable' : 'GPU: checking…';
      gpu.title = info ? `${info.vendor} ${info.architecture} · ${info.backend} · largest buffer ${formatBytes(info.maxBufferSize)}${info.f16 ? ' · f16' : ''}` : error ?? '';
      gpu.classList.toggle('bad', !info && !!error);
    },
    refreshStorage,
  };
}

/** The page shown instead of the start screen when there is no usable WebGPU. */
export function gpuErrorCard(message: string): HTMLElement {
  return h('section', { class: 'card gpu-error', testid: 'gpu-error', attrs: { role: 'alert' } },
    h('h2', { class: 'card-title', text: 'This page needs WebGPU' }),
    h('p', {}, 'STaR trains a model on your own GPU through WebGPU, and this browser did not provide it:'),
    h('pre', { class: 'rationale', text: message }),
    h('p', { text: 'What works:' }),
    h('ul', {},
      h('li', { text: 'Chrome or Edge 113+ on Windows, macOS and ChromeOS; on Linux and Android, a recent Chrome with WebGPU enabled (chrome://flags/#enable-unsafe-webgpu).' }),
      h('li', { text: 'Safari 26+ on macOS and iOS.' }),
      h('li', { text: 'Firefox 141+ on Windows.' }),
      h('li', { text: 'An up-to-date GPU driver; check chrome://gpu if WebGPU is listed as disabled.' }),
    ),
    h('p', { class: 'small muted', text: 'Runs already stored in this browser can still be opened, browsed, exported and imported below.' }),
  );
}
