// The run archive reader (Import in the app: unzipRun): a real exported run with bytes of the zip flipped,
// cut, inserted or repeated; with one of its JSON documents mutated or given a field holding any JSON value
// (nested deeper than any stack included); and random bytes give a checked run or an Error saying what is
// wrong, never a crash of another kind, and quickly.
import { strFromU8, strToU8, unzipSync, zipSync } from 'fflate';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { unzipRun, zipRun } from '../../src/storage/archive';
import { fakeArchive } from '../storage/fixtures';
import { deepJson, mutatedBytes, mutatedText, parsesOrRefuses, PROPS, withFieldReplaced } from './props';

let zip: Uint8Array;
let files: Record<string, Uint8Array>;
beforeAll(async () => {
  const { meta, archive } = await fakeArchive('props run');
  zip = zipRun(meta, archive);
  files = unzipSync(zip);
});

/**
 * A refusal may quote a damaged entry name whole: zip names run to 65,535 bytes, and a flipped length byte
 * makes one swallow the rest of the central directory (messages of 5 kB were seen).
 */
const MAX_MESSAGE = 70_000;

function importZip(bytes: Uint8Array): void {
  const t0 = performance.now();
  const run = parsesOrRefuses(() => unzipRun(bytes), undefined, MAX_MESSAGE);
  expect(performance.now() - t0).toBeLessThan(2000);
  if (run) expect(typeof run.config).toBe('object');
}

/** The archive with one file's text replaced. */
const withFile = (path: string, text: string) => zipSync({ ...files, [path]: strToU8(text) }, { level: 0 }); // stored: quick to write
const jsonPaths = () => Object.keys(files).filter((p) => p.endsWith('.json')).sort();

describe('unzipRun (property-based)', () => {
  it('reads back the exported run', () => {
    expect(unzipRun(zip).phases.length).toBeGreaterThan(0);
  });

  it('the zip with bytes flipped, cut, inserted, deleted or repeated', () => {
    fc.assert(fc.property(mutatedBytes(fc.constant(0).map(() => zip)), importZip), PROPS);
  });

  it('one JSON document mutated, or one of its fields holding any JSON value', () => {
    const paths = fc.constantFrom(...jsonPaths());
    fc.assert(
      fc.property(paths.chain((p) => fc.tuple(fc.constant(p), mutatedText(fc.constant(strFromU8(files[p]))))), ([p, text]) => importZip(withFile(p, text))),
      PROPS,
    );
    const objects = jsonPaths().filter((p) => {
      const v = JSON.parse(strFromU8(files[p]));
      return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0;
    });
    fc.assert(
      fc.property(fc.constantFrom(...objects).chain((p) => fc.tuple(fc.constant(p), withFieldReplaced(JSON.parse(strFromU8(files[p]))))), ([p, text]) => importZip(withFile(p, text))),
      PROPS,
    );
  });

  it('every JSON document replaced by an array nested 20,000 deep', () => {
    for (const p of jsonPaths()) importZip(withFile(p, deepJson(20_000)));
  });

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), importZip), { ...PROPS, numRuns: Math.ceil((PROPS.numRuns ?? 100) / 2) });
  });
});
