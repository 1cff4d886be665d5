// The page bench.html: the same suite as `npm run bench`, in the browser, on navigator.gpu.
// Open it from the dev server (npm run dev, then /bench.html). Query parameters preset the form and
// ?autorun=1 starts at once (bench/browser_run.ts drives it headless that way):
//   bench.html?suite=quick&only=matmul,train&peers=jax-js&autorun=1
// window.__bench reports the state and, when done, the JSON document.

import { requestGpu } from '../src/gpu/device';
import type { Peer } from './peers/peer';
import { type BenchDocument, checkDocument, formatTable, type PeerName } from './report';
import { type Group, GROUPS, plan, runSuite } from './suite';

export interface BenchState {
  state: 'idle' | 'running' | 'done' | 'error';
  doc?: BenchDocument;
  error?: string;
  log: string[];
}

// Peer modules load on demand: a peer package that is missing or broken then costs only that peer.
const LOADERS: Record<PeerName, () => Promise<Peer>> = {
  tfjs: async () => (await import('./peers/tfjs')).loadTfjs(),
  'jax-js': async () => (await import('./peers/jax')).loadJax(),
};
const status: BenchState = { state: 'idle', log: [] };
(window as unknown as { __bench: BenchState }).__bench = status;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('controls');
const logEl = $<HTMLPreElement>('log');

function log(line: string): void {
  status.log.push(line);
  logEl.textContent += line + '\n';
}

function setStatus(text: string): void {
  $('status').textContent = text;
}

for (const g of GROUPS) {
  const label = document.createElement('label');
  const box = Object.assign(document.createElement('input'), { type: 'checkbox', name: 'group', value: g, checked: true });
  label.append(box, ` ${g}`);
  $('groups').append(label);
}

// Preset the form from the query string.
const query = new URLSearchParams(location.search);
const checkOnly = (name: string, values: string[]) =>
  form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]`).forEach((b) => (b.checked = values.includes(b.value)));
if (query.get('suite') === 'full') checkOnly('suite', ['full']);
if (query.has('only')) checkOnly('group', query.get('only')!.split(','));
if (query.has('peers')) checkOnly('peer', query.get('peers')!.split(','));
if (query.has('peak')) (form.elements.namedItem('peak') as HTMLInputElement).value = query.get('peak')!;

function checked(name: string): string[] {
  return [...form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]:checked`)].map((b) => b.value);
}

async function run(): Promise<void> {
  status.state = 'running';
  status.log = [];
  logEl.textContent = '';
  $<HTMLButtonElement>('run').disabled = true;
  setStatus('running...');
  try {
    const quick = checked('suite')[0] !== 'full';
    const peakText = (form.elements.namedItem('peak') as HTMLInputElement).value;
    const peak = peakText ? Number(peakText) : undefined;
    const gpu = await requestGpu();
    const a = gpu.adapter;
    log(`device: ${a.description || a.device} [${a.vendor} ${a.architecture}] via ${a.backend}; suite ${quick ? 'quick' : 'full'}`);
    const peers: Peer[] = [];
    const peerStatus: BenchDocument['peerStatus'] = {};
    for (const name of checked('peer') as PeerName[]) {
      try {
        const p = await LOADERS[name]();
        peers.push(p);
        peerStatus[name] = p.version;
      } catch (e) {
        peerStatus[name] = `not run: ${(e as Error).message}`;
      }
      log(`peer ${name}: ${peerStatus[name]}`);
    }
    const cases = await runSuite(gpu, plan(quick), { peers, peakTflops: peak, groups: new Set(checked('group') as Group[]), log });
    const doc: BenchDocument = {
      suite: quick ? 'quick' : 'full', date: new Date().toISOString(), adapter: gpu.adapter, runtime: navigator.userAgent,
      peakTflops: peak ?? null, peerStatus, cases,
    };
    checkDocument(doc);
    $('table').textContent = formatTable(cases);
    const link = $<HTMLAnchorElement>('download');
    link.href = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2) + '\n'], { type: 'application/json' }));
    link.hidden = false;
    status.doc = doc;
    status.state = 'done';
    setStatus('done');
  } catch (e) {
    status.error = (e as Error).message;
    status.state = 'error';
    setStatus(`failed: ${status.error}`);
    log(`error: ${(e as Error).stack ?? e}`);
  } finally {
    $<HTMLButtonElement>('run').disabled = false;
  }
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void run();
});
if (query.get('autorun') === '1') void run();
