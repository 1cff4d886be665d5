// A RunStore in a folder, for the Node CLI (node:fs, so never import it from browser code):
//
//   DIR/<key>.json                      run documents (run, star-config, summary)
//   DIR/<name>.safetensors              weights (base, latest)
//   DIR/iteration-<n>/<phase>.json      each completed phase
//   DIR/iteration-<n>/rationales.jsonl  the kept rationales of filter + rationalize, one JSON per line
//   DIR/manifest.json                   every committed file with its byte length and SHA-256
//
// A commit (one phase's outputs, or one document) is all or nothing:
//   1. each file is written to <file>.pending and flushed, then its folder;
//   2. a new manifest.json listing them is written to a temp file, flushed and renamed over the old one:
//      that rename is the commit;
//   3. each <file>.pending is renamed to <file>, and the folders flushed.
// A kill before 2 leaves the old manifest, which does not list the new files; the next writer removes the
// leftovers. A kill during 3 leaves .pending files that match the manifest: reads use them, and the next
// writer renames them into place. Weights given to putWeights wait as .pending for the next putPhase, the
// phase that produced them: base.safetensors commits with iteration-0/seed.json, latest.safetensors with
// iteration-<n>/finetune.json, so neither can be there without its record.
//
// Every read checks the file against the manifest. A file that differs is never used nor overwritten: the
// error names it and what to delete so the next run redoes the phases it feeds. A folder without a manifest
// (an older version's, or a run exported by the app) is read as it is, and adopted by its first writer:
// its files are checked (JSON parses, safetensors headers hold) and listed.

import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { parseSafetensors } from '../../hub/safetensors';
import type { FilterOutput, KeptExample, PhaseName, RationalizeOutput, RunStore } from '../types';
import { folderFs, ioFailure, nextTmp, readOrUndefined, RunFolderError, TMP } from './folder_fs';

export { RunFolderError } from './folder_fs';

// ---- The manifest, and what to do about a file that does not match it. ----

const MANIFEST = 'manifest.json';
const PENDING = '.pending';
const FORMAT = 'star-run-folder';
const PHASES: PhaseName[] = ['seed', 'generate', 'filter', 'rationalize', 'finetune', 'evaluate'];

/** `commit`: what wrote the file, an 'iteration-<n>/<phase>', a document key, or 'adopted'. */
interface Entry {
  bytes: number;
  sha256: string;
  commit: string;
}
interface Manifest {
  format: typeof FORMAT;
  version: 1;
  files: Record<string, Entry>;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const entryOf = (data: Uint8Array, commit: string): Entry => ({ bytes: data.byteLength, sha256: sha256(data), commit });
const matches = (data: Uint8Array, e: Entry) => data.byteLength === e.bytes && sha256(data) === e.sha256;
const utf8 = (s: string) => new TextEncoder().encode(s);
const phaseRel = (iteration: number, phase: PhaseName) => `iteration-${iteration}/${phase}.json`;

/** 'iteration-3/finetune.json' or the commit 'iteration-3/finetune' -> its phase; anything else -> null. */
function phaseOf(relOrCommit: string): { iteration: number; phase: PhaseName } | null {
  const m = /^iteration-(\d+)\/([a-z]+)(?:\.json)?$/.exec(relOrCommit);
  return m && PHASES.includes(m[2] as PhaseName) ? { iteration: Number(m[1]), phase: m[2] as PhaseName } : null;
}

/** The loop's order of the files in iteration folders: iteration, then phase; the rest first. */
const order = (rel: string) => {
  const p = rel.startsWith('iteration-') ? ownerOf(rel, '', null) : null;
  return p ? p.iteration * 10 + PHASES.indexOf(p.phase) : -1;
};

function parseManifest(bytes: Uint8Array, path: string): Manifest {
  const fail = (why: string): never => {
    throw new RunFolderError(`${path} is damaged (${why}); delete it to have the folder's files checked and listed anew, then run the same command again.`);
  };
  let m: Manifest;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    return fail(`not valid JSON: ${(e as Error).message}`);
  }
  if (m?.format !== FORMAT) throw new RunFolderError(`${path} is not a run folder's manifest (its "format" is ${JSON.stringify(m?.format)}); give a folder written by npm run star, or a new one.`);
  if (m.version !== 1) fail(`version ${JSON.stringify(m.version)}; this version of the runner reads version 1`);
  if (typeof m.files !== 'object' || m.files === null) fail('no "files" object');
  for (const [rel, e] of Object.entries(m.files)) {
    if (!Number.isInteger(e?.bytes) || !/^[0-9a-f]{64}$/.test(e?.sha256) || typeof e?.commit !== 'string') fail(`its entry for ${rel} is malformed`);
  }
  return m;
}

const isConfig = (rel: string) => rel === 'run.json' || rel === 'star-config.json';

/**
 * The phase whose outputs include `rel` (for weights, the phase that saved them); null for documents.
 * `commit` is the file's manifest entry's; `latestFrom` is the iteration of the last committed fine-tune.
 */
function ownerOf(rel: string, commit: string, latestFrom: number | null): { iteration: number; phase: PhaseName } | null {
  const inIteration = /^iteration-(\d+)\//.exec(rel);
  if (inIteration) return phaseOf(rel) ?? { iteration: Number(inIteration[1]), phase: 'filter' }; // rationales.jsonl
  if (rel === 'base.safetensors') return { iteration: 0, phase: 'seed' };
  return phaseOf(commit) ?? (rel === 'latest.safetensors' && latestFrom !== null ? { iteration: latestFrom, phase: 'finetune' } : null);
}

/**
 * What to delete so that the next run redoes everything a damaged or missing file feeds, and nothing else.
 * The loop keeps one 'latest' model, so redoing iteration n's generate, filter or rationalize needs
 * M_(n-1) again: iteration n-1's fine-tune is redone first.
 */
export function remedy(rel: string, commit: string, latestFrom: number | null): string {
  const again = 'then run the same command again';
  const fromFinetune = (j: number) =>
    `delete iteration-${j}/finetune.json, iteration-${j}/evaluate.json and every iteration folder after iteration-${j}, ${again} to redo them`;
  if (isConfig(rel)) return 'the run\'s configuration cannot be rebuilt: restore the file from a copy, or start a new --out folder';
  const owner = ownerOf(rel, commit, latestFrom);
  if (owner === null) return `delete ${rel}, ${again} to write it anew`;
  const { iteration: k, phase } = owner;
  if (phase === 'seed') return `delete base.safetensors and every iteration-<n> folder, ${again} to train the base model anew`;
  if (k === 0) return `delete iteration-0/evaluate.json, ${again} to redo it`;
  if (phase === 'finetune' || phase === 'evaluate') return fromFinetune(k);
  return k === 1 ? `delete every iteration-<n> folder but iteration-0, ${again} to redo them` : fromFinetune(k - 1);
}

/** The checks a file gets when a folder without a manifest is adopted: what its extension promises. */
function checkAdopted(rel: string, data: Uint8Array): void {
  if (rel.endsWith('.safetensors')) parseSafetensors(data, rel);
  const text = () => new TextDecoder('utf-8', { fatal: true }).decode(data);
  if (rel.endsWith('.json')) JSON.parse(text());
  if (rel.endsWith('.jsonl')) for (const line of text().split('\n')) if (line.trim() !== '') JSON.parse(line);
}

/** Keys and weight names become file names, so they must be plain names (no separators, no "..", no ".x"). */
function checkName(kind: string, name: string): void {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name) || name === MANIFEST || `${name}.json` === MANIFEST || name.endsWith(PENDING) || TMP.test(name)) {
    throw new Error(`FolderStore: ${kind} ${JSON.stringify(name)} is not a plain file name (letters, digits, . _ -)`);
  }
}

function checkIteration(iteration: number): void {
  if (!Number.isInteger(iteration) || iteration < 0) throw new Error(`FolderStore: iteration must be an integer >= 0, got ${iteration}`);
}

// ---- The store. ----

export class FolderStore implements RunStore {
  /** undefined: not read yet; null: the folder has none (it is read as it is). */
  private manifest: Manifest | null | undefined;
  /** Weights written as .pending by putWeights, committed by the next putPhase. */
  private readonly staged = new Map<string, Entry>();
  private recovered = false;
  /** A commit that failed before its manifest: staged weights are gone, so no later commit may pretend otherwise. */
  private failed: unknown = null;

  constructor(readonly dir: string) {}

  private path(rel: string): string {
    return join(this.dir, rel);
  }

  private async load(): Promise<Manifest | null> {
    if (this.manifest === undefined) {
      const bytes = await readOrUndefined(this.path(MANIFEST));
      this.manifest = bytes === undefined ? null : parseManifest(bytes, this.path(MANIFEST));
    }
    return this.manifest;
  }

  private latestFrom(files: Record<string, Entry>): number | null {
    const its = Object.keys(files).flatMap((rel) => (phaseOf(rel)?.phase === 'finetune' ? [phaseOf(rel)!.iteration] : []));
    return its.length > 0 ? Math.max(...its) : null;
  }

  private problem(rel: string, e: Entry, what: string): RunFolderError {
    const files = this.manifest?.files ?? {};
    return new RunFolderError(`${this.path(rel)} ${what}: in ${this.dir}, ${remedy(rel, e.commit, this.latestFrom(files))}.`);
  }

  private damaged(rel: string, e: Entry, data: Uint8Array): RunFolderError {
    const how = data.byteLength !== e.bytes ? `${data.byteLength} bytes where manifest.json lists ${e.bytes}` : 'its SHA-256 differs from manifest.json\'s';
    return this.problem(rel, e, `is damaged (${how})`);
  }

  /** A committed file's bytes, checked against the manifest; undefined if it was never committed or was deleted. */
  async getFile(rel: string): Promise<Uint8Array | undefined> {
    const m = await this.load();
    const path = this.path(rel);
    if (m === null) return readOrUndefined(path);
    const staged = this.staged.get(rel);
    if (staged) {
      const data = await readOrUndefined(path + PENDING);
      if (data === undefined || !matches(data, staged)) throw this.damaged(rel, staged, data ?? new Uint8Array());
      return data;
    }
    const entry = m.files[rel];
    if (!entry) return undefined;
    const data = await readOrUndefined(path);
    if (data !== undefined && matches(data, entry)) return data;
    const pending = await readOrUndefined(path + PENDING);
    if (pending !== undefined && matches(pending, entry)) return pending; // committed; its rename into place did not happen
    if (data === undefined) return undefined;
    throw this.damaged(rel, entry, data);
  }

  private async readJSON<T>(rel: string): Promise<T | undefined> {
    const data = await this.getFile(rel);
    if (data === undefined) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(data)) as T;
    } catch (e) {
      throw this.problem(rel, { bytes: 0, sha256: '', commit: '' }, `is damaged (not valid JSON: ${(e as Error).message})`);
    }
  }

  async getPhase<T>(iteration: number, phase: PhaseName): Promise<T | undefined> {
    checkIteration(iteration);
    return this.readJSON<T>(phaseRel(iteration, phase));
  }

  async getWeights(name: string): Promise<Uint8Array | undefined> {
    checkName('weights name', name);
    const rel = `${name}.safetensors`;
    const m = await this.load();
    const e = m?.files[rel];
    const from = e && phaseOf(e.commit);
    if (!this.staged.has(rel) && from && m!.files[phaseRel(from.iteration, from.phase)] === undefined) {
      throw this.problem(rel, { ...e, commit: '' }, `was saved by ${e.commit}, which is no longer in the folder`);
    }
    const bytes = await this.getFile(rel);
    return bytes && new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async getJSON<T>(key: string): Promise<T | undefined> {
    checkName('key', key);
    return this.readJSON<T>(`${key}.json`);
  }

  /** The completed phases in the loop's order, as 'iteration-<n>/<phase>'. */
  async completedPhases(): Promise<string[]> {
    await this.recover();
    const rels = Object.keys(this.manifest!.files).filter((rel) => phaseOf(rel) !== null);
    return rels.sort((a, b) => order(a) - order(b)).map((rel) => rel.slice(0, -'.json'.length));
  }

  async putPhase<T>(iteration: number, phase: PhaseName, value: T): Promise<void> {
    checkIteration(iteration);
    const files: [string, Uint8Array][] = [];
    if (phase === 'filter' || phase === 'rationalize') files.push(await this.rationales(iteration, phase, value as FilterOutput | RationalizeOutput));
    files.push([phaseRel(iteration, phase), utf8(JSON.stringify(value, null, 1))]);
    await this.commit(files, `iteration-${iteration}/${phase}`, true);
  }

  /** rationales.jsonl = filter's kept rationales, then rationalize's: the phase being written, the other from disk. */
  private async rationales(iteration: number, phase: 'filter' | 'rationalize', value: FilterOutput | RationalizeOutput): Promise<[string, Uint8Array]> {
    const other = phase === 'filter' ? 'rationalize' : 'filter';
    const stored = await this.getPhase<FilterOutput | RationalizeOutput>(iteration, other);
    const parts = phase === 'filter' ? [value.kept, stored?.kept ?? []] : [stored?.kept ?? [], value.kept];
    const lines = parts.flat().map((k: KeptExample) =>
      JSON.stringify({ prompt: k.prompt, rationale: k.rationale, answer: k.answer, source: k.source, problem: k.problem }),
    );
    return [`iteration-${iteration}/rationales.jsonl`, utf8(lines.map((l) => `${l}\n`).join(''))];
  }

  /** Staged: the weights commit with the next putPhase (until then getWeights returns them). */
  async putWeights(name: string, bytes: Uint8Array): Promise<void> {
    checkName('weights name', name);
    await this.recover();
    const rel = `${name}.safetensors`;
    try {
      await folderFs().mkdir(this.dir);
      await folderFs().writeFile(this.path(rel) + PENDING, bytes);
    } catch (e) {
      throw ioFailure('write', this.path(rel), e);
    }
    this.staged.set(rel, entryOf(bytes, ''));
  }

  async putJSON<T>(key: string, value: T): Promise<void> {
    checkName('key', key);
    await this.commit([[`${key}.json`, utf8(JSON.stringify(value, null, 2))]], key, false);
  }

  /** Commits plain files at the folder's top (the final model, say) as one. */
  async putFiles(files: Map<string, string | Uint8Array>, commit: string): Promise<void> {
    for (const name of files.keys()) checkName('file name', name);
    await this.commit([...files].map(([rel, d]) => [rel, typeof d === 'string' ? utf8(d) : d]), commit, false);
  }

  private async commit(files: [string, Uint8Array][], label: string, withStaged: boolean): Promise<void> {
    if (this.failed) throw new Error(`FolderStore: an earlier write to ${this.dir} failed (${(this.failed as Error).message}); open the folder again to go on`);
    await this.recover();
    const fs = folderFs();
    const next = { ...this.manifest!.files };
    // Renamed in this order, the phase's record last: whatever reads the folder without the manifest (an
    // older runner, the app's import) never finds a phase's record before its files.
    const moved = [...(withStaged ? this.staged.keys() : []), ...files.map(([rel]) => rel)];
    const dirs = [...new Set([this.dir, ...moved.map((rel) => dirname(this.path(rel)))])];
    const manifestPath = this.path(MANIFEST);
    const tmp = nextTmp(manifestPath);
    let current = this.dir;
    try {
      for (const [rel, data] of files) {
        current = this.path(rel);
        await fs.mkdir(dirname(current));
        await fs.writeFile(current + PENDING, data);
        next[rel] = entryOf(data, label);
      }
      if (withStaged) for (const [rel, e] of this.staged) next[rel] = { ...e, commit: label };
      for (const d of dirs) await fs.syncDir((current = d));
      current = manifestPath;
      const sorted = Object.fromEntries(Object.entries(next).sort(([a], [b]) => (a < b ? -1 : 1))); // the same files, the same bytes
      await fs.writeFile(tmp, JSON.stringify({ format: FORMAT, version: 1, files: sorted } satisfies Manifest, null, 1) + '\n');
      await fs.rename(tmp, manifestPath); // the commit
    } catch (e) {
      this.failed = e;
      for (const rel of [MANIFEST, ...moved]) await fs.rm(rel === MANIFEST ? tmp : this.path(rel) + PENDING).catch(() => {});
      this.staged.clear();
      throw ioFailure('write', current, e, `saving ${label}`);
    }
    this.manifest = { format: FORMAT, version: 1, files: next };
    if (withStaged) this.staged.clear();
    try {
      for (const rel of moved) await fs.rename((current = this.path(rel)) + PENDING, current);
      for (const d of dirs) await fs.syncDir((current = d));
    } catch (e) {
      // Committed: reads use the .pending files, and the next run moves them into place.
      throw ioFailure('move into place', current, e, `${label} is saved; the next run finishes the move`);
    }
  }

  /** Every file in the folder and its iteration-<n> folders, relative to it. */
  private async walk(): Promise<string[]> {
    const list = (d: string) => folderFs().list(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw ioFailure('read', d, e);
    });
    const rels: string[] = [];
    for (const e of await list(this.dir)) {
      if (!e.isDir) rels.push(e.name);
      else if (/^iteration-\d+$/.test(e.name)) for (const f of await list(this.path(e.name))) if (!f.isDir) rels.push(`${e.name}/${f.name}`);
    }
    return rels;
  }

  /**
   * Readies the folder for writing (the first write calls it): adopts a folder without a manifest, finishes
   * an interrupted commit, removes what an unfinished one left, and checks every committed file. A damaged
   * file, or one missing while later phases are there, is a RunFolderError.
   */
  async recover(): Promise<void> {
    if (this.recovered) return;
    const m = await this.load();
    const rels = await this.walk();
    this.manifest = m === null ? await this.adopt(rels) : await this.finish(m, rels);
    this.recovered = true;
  }

  private async adopt(rels: string[]): Promise<Manifest> {
    const files: Record<string, Entry> = {};
    for (const rel of rels.sort((a, b) => order(a) - order(b))) {
      if (rel.endsWith(PENDING) || TMP.test(rel)) {
        // An unfinished first commit: nothing was listed yet.
        await folderFs().rm(this.path(rel)).catch((e) => Promise.reject(ioFailure('remove', this.path(rel), e)));
        continue;
      }
      if (rel.startsWith('.')) continue;
      const data = (await readOrUndefined(this.path(rel)))!;
      try {
        checkAdopted(rel, data);
      } catch (e) {
        this.manifest = { format: FORMAT, version: 1, files };
        throw this.problem(rel, { bytes: 0, sha256: '', commit: '' }, `is damaged (${(e as Error).message})`);
      }
      files[rel] = entryOf(data, phaseOf(rel) ? rel.slice(0, -'.json'.length) : 'adopted');
    }
    return { format: FORMAT, version: 1, files };
  }

  private async finish(m: Manifest, rels: string[]): Promise<Manifest> {
    const fs = folderFs();
    for (const rel of rels) {
      const path = this.path(rel);
      try {
        if (TMP.test(rel)) await fs.rm(path);
        if (!rel.endsWith(PENDING)) continue;
        const target = rel.slice(0, -PENDING.length);
        const e = m.files[target];
        const [data, now] = [await readOrUndefined(path), await readOrUndefined(this.path(target))];
        const rollForward = e && data && matches(data, e) && !(now && matches(now, e));
        if (rollForward) await fs.rename(path, this.path(target));
        else await fs.rm(path);
        await fs.syncDir(dirname(path));
      } catch (e) {
        throw ioFailure('finish the last commit at', path, e);
      }
    }
    const files = { ...m.files };
    const missing = new Set<string>();
    for (const rel of Object.keys(files).sort((a, b) => order(a) - order(b))) {
      const data = await readOrUndefined(this.path(rel));
      if (data === undefined) missing.add(rel);
      else if (!matches(data, files[rel])) throw this.damaged(rel, files[rel], data);
    }
    // A missing file was deleted to redo its phase, unless what it feeds is still there.
    const present = (rel: string) => files[rel] !== undefined && !missing.has(rel);
    const latestFrom = this.latestFrom(files);
    for (const rel of missing) {
      const p = phaseOf(rel);
      const owner = ownerOf(rel, files[rel].commit, latestFrom);
      const feedsPresent = p
        ? p.phase !== 'evaluate' && Object.keys(files).some((r) => phaseOf(r) && present(r) && order(r) > order(rel))
        : isConfig(rel) || (owner !== null && present(phaseRel(owner.iteration, owner.phase)));
      if (feedsPresent) throw this.problem(rel, files[rel], 'is missing, though manifest.json lists it and what it feeds is still there');
    }
    for (const rel of missing) delete files[rel];
    return { ...m, files };
  }
}
