// The page: wires the views to the engine worker. The worker does every heavy thing (GPU, loop,
// storage, zips); this thread only renders events, at most once per frame.

import type { AnyRunConfig } from '../star/run_configs';
import { taskOf } from '../star/tasks/registry';
import { folderName } from '../storage/names';
import type { CsqaFiles, EngineEvent, RunInfo } from '../worker/api';
import { createEngineClient } from '../worker/client';
import { rationaleBrowser } from './browser';
import { h } from './dom';
import { type Added, explainPanel } from './explain';
import { keptLines } from './format';
import { gpuErrorCard, header } from './header';
import { liveView } from './live';
import { runsView } from './runs';
import { startForm } from './start';
import { rationaleStream } from './stream';
import './styles.css';

const client = createEngineClient();
let liveId: string | null = null;
let gpuReady = false;
/** Events of a run the live view has not opened yet (a run's first events can beat its id back). */
let early: EngineEvent[] = [];

const top = header();
const explain = explainPanel();

/** What the run's latest STaR iteration kept, per digit count (nothing for the base model or direct answers). */
function lastAdded(run: RunInfo): Added | null {
  const r = run.iterations.at(-1);
  if (!r || r.iteration === 0 || r.generated === 0) return null;
  const rationale = taskOf(run.config).checksRationales(run.config);
  return { iteration: r.iteration, lines: keptLines(r.keptByCategory, rationale) };
}
const stream = rationaleStream();
const browser = rationaleBrowser({ rationales: (id, it) => client.api.rationales(id, it) });

const live = liveView({
  pause: () => client.api.pause(),
  resume: (id) => resume(id),
  stop,
  onPhase: (run, phase) => explain.show(run?.config.star.mode ?? null, phase, run?.config.task, run && lastAdded(run), run?.config),
});

const start = startForm({
  estimate: (cfg, files) => client.api.estimate(cfg, files),
  start: startRun,
  onTask: (task) => {
    if (!live.run()) explain.show(null, null, task); // with no run open, the panel follows the form
  },
});

const runs = runsView({
  list: () => client.api.listRuns(),
  open: (r) => open(r, false),
  remove: async (id) => {
    try {
      await client.api.deleteRun(id);
    } catch (e) {
      return runs.message((e as Error).message, 'error');
    }
    await refresh();
    if (live.run()?.id !== id) return;
    const next = (await client.api.listRuns())[0];
    if (next) open(next, false);
    else location.reload(); // nothing left to show: back to the empty page
  },
  exportRun,
  importFile,
  liveId: () => liveId,
  openId: () => live.run()?.id ?? null,
});

function onEvent(e: EngineEvent): void {
  if (live.run()?.id !== e.runId) {
    early.push(e);
    return;
  }
  live.event(e);
  if (e.kind === 'sample') stream.push(e);
  if (e.kind === 'iteration') {
    browser.show(live.run());
    void refresh();
  }
  if (e.kind === 'status' && e.status !== 'running') {
    liveId = null;
    // A full disk can refuse even the write of the run's end: then the stored record lags behind, and the
    // worker's word (paused, with what was not saved and what to do) is what the page shows.
    void client.api.getRun(e.runId).then((r) => r && open(e.error && r.error !== e.error ? { ...r, status: e.status, error: e.error } : r, false));
    void refresh();
  }
}

function open(r: RunInfo, isLive: boolean, estimateSeconds?: number | null): void {
  if (live.run()?.id !== r.id) stream.clear();
  live.open(r, isLive, estimateSeconds);
  browser.show(r);
  const pending = early.filter((e) => e.runId === r.id);
  early = [];
  for (const e of pending) onEvent(e);
  available();
  void runs.refresh();
}

function available(): void {
  const why = !gpuReady ? 'Needs WebGPU.' : liveId ? 'A run is going: pause or stop it to start another.' : undefined;
  start.setAvailable(!why, why);
  live.setCanResume(gpuReady && !liveId);
}

async function refresh(): Promise<void> {
  await runs.refresh();
  await top.refreshStorage();
}

async function startRun(cfg: AnyRunConfig, name: string, files?: CsqaFiles): Promise<void> {
  try {
    const est = await client.api.estimate(cfg, files);
    const label = taskOf(cfg).modelLabel(cfg);
    const id = await client.api.start(cfg, name || `${label} · ${cfg.star.mode}`, client.listener(onEvent), files);
    liveId = id;
    const r = await client.api.getRun(id);
    if (r) open(r, true, est.seconds);
  } catch (e) {
    runs.message((e as Error).message, 'error');
  }
  available();
}

async function resume(id: string): Promise<void> {
  try {
    liveId = id;
    available();
    await client.api.resume(id, client.listener(onEvent));
    const r = await client.api.getRun(id);
    if (r) open(r, true);
  } catch (e) {
    liveId = null;
    runs.message((e as Error).message, 'error');
  }
  available();
}

/** Stop: end the worker at once and start a fresh one; the run is left interrupted, resumable. */
async function stop(): Promise<void> {
  const id = liveId;
  client.stop();
  liveId = null;
  if (id) live.event({ kind: 'status', runId: id, status: 'interrupted' }); // as the new worker will list it
  available();
  const r = id ? await client.api.getRun(id) : undefined;
  if (r) open(r, false);
  await refresh();
  await initGpu(); // the new worker's GPU, ready for Resume
}

async function exportRun(r: RunInfo): Promise<void> {
  try {
    const zip = await client.api.exportRun(r.id);
    const url = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }));
    const a = h('a', { href: url, download: `${folderName(r.name)}.zip`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    runs.message(`Exported “${r.name}” as ${folderName(r.name)}.zip (the CLI’s run folder).`, 'ok');
  } catch (e) {
    runs.message((e as Error).message, 'error');
  }
}

async function importFile(file: File): Promise<void> {
  try {
    const buf = await file.arrayBuffer();
    const id = await client.api.importRun(client.transfer(buf, [buf]));
    const r = await client.api.getRun(id);
    runs.message(`Imported “${r?.name ?? file.name}”.`, 'ok');
    if (r && !liveId) open(r, false);
    await refresh();
  } catch (e) {
    runs.message((e as Error).message, 'error');
  }
}

const startSlot = h('div', { class: 'start-slot' }, start.el);

async function initGpu(): Promise<void> {
  let error: string | null = null;
  if (!('gpu' in navigator) || !navigator.gpu) error = 'navigator.gpu is missing: this browser has no WebGPU, or it is turned off.';
  else {
    try {
      const info = await client.api.init();
      top.setGpu(info);
      gpuReady = true;
    } catch (e) {
      error = (e as Error).message;
    }
  }
  if (error !== null) {
    gpuReady = false;
    top.setGpu(null, error);
    startSlot.replaceChildren(gpuErrorCard(error));
  }
  available();
}

async function main(): Promise<void> {
  if (import.meta.env.MODE === 'production' && 'serviceWorker' in navigator) {
    // Offline use after the first visit; a page that cannot register one works the same, online.
    navigator.serviceWorker.register('./sw.js').catch((e) => console.warn('No offline support:', e));
  }
  const app = document.getElementById('app')!;
  app.replaceChildren(
    top.el,
    h('main', { class: 'layout' },
      h('div', { class: 'col-side' }, startSlot, runs.el),
      h('div', { class: 'col-main' }, live.el, stream.el, runs.compare, browser.el),
      h('aside', { class: 'col-explain' }, explain.el),
    ),
  );
  explain.show(null, null);
  browser.show(null);
  await initGpu();
  const all = await runs.refresh();
  if (all.length > 0) open(all[0], false);
  await top.refreshStorage();
}

void main();
