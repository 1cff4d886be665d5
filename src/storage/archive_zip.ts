// The zip side of an import, safe against hostile archives. The central directory is listed first
// (fflate's unzip filter, which inflates nothing), then every entry name is checked (no "..", no absolute
// path, no name twice) and the sizes the run's entries declare are capped, each and in total, before any
// entry is inflated. Only the run folder's files that an import reads are inflated, each into a buffer of
// its declared size (fflate never writes past it), so a zip bomb, honest about its sizes or not, cannot
// take more memory than IMPORT_LIMITS allow; an entry that inflates to another size than it declares is
// refused as damaged.

import { unzipSync } from 'fflate';
import { ImportError, refuse } from './archive_check';

const MiB = 1 << 20;

/**
 * What one import may read. A run's largest files are its two weights: within the app's 4 GiB GPU budget a
 * full fine-tune holds at most about 270M f32 parameters, 1.1 GB per copy. Weights barely compress and the
 * JSON documents compress 5 to 20 times, so a real archive inflates to a few times its size; more than
 * `ratio` times (once past `small`) is a zip bomb.
 */
export const IMPORT_LIMITS = {
  /** Entries in the whole archive. */
  entries: 10_000,
  /** Bytes of one JSON document (a paper-like iteration's phases are a few MB each). */
  json: 256 * MiB,
  /** Bytes of one weights file. */
  weights: 2048 * MiB,
  /** Bytes of all the files an import reads, inflated. */
  total: 4096 * MiB,
  /** Inflated bytes per byte of archive, checked once the total is past `small`. */
  ratio: 100,
  small: 256 * MiB,
};

/** The files of a run folder that an import reads (relative to the folder); everything else stays compressed. */
const READ = /^(?:(?:star-webgpu|run|star-config|summary|csqa-questions|config)\.json|(?:base|latest)\.safetensors|iteration-\d+\/[a-z]+\.json)$/;

interface Entry {
  name: string;
  /** Compressed bytes. */
  size: number;
  /** Bytes once inflated, as the archive declares them. */
  originalSize: number;
  /** 0 stored, 8 deflate. */
  compression: number;
}

const sizeText = (n: number) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= MiB ? `${Math.round(n / MiB)} MiB` : `${n} bytes`);

/** Why an entry name is unsafe, or null. A zip's names are relative, with forward slashes; backslashes are checked as separators too. */
function unsafeName(name: string): string | null {
  if (/[\u0000-\u001f]/.test(name)) return 'holds control characters';
  if (/^[/\\]/.test(name) || /^[A-Za-z]:/.test(name)) return 'is an absolute path';
  if (name.split(/[/\\]/).includes('..')) return 'climbs out of its folder with ".."';
  return null;
}

/** Every entry of the central directory, names checked; nothing is inflated. */
function listEntries(bytes: Uint8Array): Entry[] {
  const entries: Entry[] = [];
  try {
    unzipSync(bytes, {
      filter: ({ name, size, originalSize, compression }) => {
        entries.push({ name, size, originalSize, compression });
        if (entries.length > IMPORT_LIMITS.entries) throw refuse(`it holds more than ${IMPORT_LIMITS.entries} entries; a run archive holds a few dozen.`);
        return false;
      },
    });
  } catch (e) {
    if (e instanceof ImportError) throw e;
    throw refuse(`it is not a zip archive (${(e as Error).message}).`);
  }
  const seen = new Set<string>();
  for (const { name } of entries) {
    const why = unsafeName(name);
    if (why) throw refuse(`entry ${JSON.stringify(name)} ${why}; a run archive holds only relative paths inside its run folder.`);
    if (seen.has(name)) throw refuse(`entry ${JSON.stringify(name)} appears twice; a zip that names a file twice can show one copy and import the other.`);
    seen.add(name);
  }
  return entries;
}

/** The run folder's files an import reads, relative to the folder (a zip may hold the folder or just its contents). */
export function readRunFiles(bytes: Uint8Array): Map<string, Uint8Array> {
  const entries = listEntries(bytes);
  const runJsons = entries.map((e) => e.name).filter((p) => p === 'run.json' || p.endsWith('/run.json'));
  if (runJsons.length === 0) throw new ImportError('it holds no run.json;', 'export a run folder (the CLI\'s --out folder) as a zip.');
  if (runJsons.length > 1) throw new ImportError(`it holds ${runJsons.length} runs (${runJsons.join(', ')});`, 'import one run per zip.');
  const prefix = runJsons[0].slice(0, -'run.json'.length);

  const read = entries.filter((e) => e.name.startsWith(prefix) && READ.test(e.name.slice(prefix.length)));
  let total = 0;
  for (const e of read) {
    const declared = Math.max(e.size, e.originalSize);
    const weights = e.name.endsWith('.safetensors');
    const cap = weights ? IMPORT_LIMITS.weights : IMPORT_LIMITS.json;
    if (declared > cap) {
      throw refuse(`entry ${JSON.stringify(e.name)} declares ${sizeText(declared)} uncompressed, more than the ${sizeText(cap)} any ${weights ? 'weights file' : 'JSON document'} of a run holds (a zip bomb, or not a run archive).`);
    }
    total += declared;
  }
  if (total > IMPORT_LIMITS.total) {
    throw refuse(`its run files declare ${sizeText(total)} uncompressed, more than the ${sizeText(IMPORT_LIMITS.total)} an import reads (a zip bomb, or not a run archive).`);
  }
  if (total > IMPORT_LIMITS.small && total > IMPORT_LIMITS.ratio * bytes.byteLength) {
    throw refuse(`its run files declare ${sizeText(total)} uncompressed from a ${sizeText(bytes.byteLength)} archive, more than ${IMPORT_LIMITS.ratio} times its size (a zip bomb, or a damaged archive).`);
  }

  const wanted = new Set(read.map((e) => e.name));
  let current = '';
  let inflated: Record<string, Uint8Array>;
  try {
    inflated = unzipSync(bytes, {
      filter: (f) => {
        current = f.name;
        return wanted.has(f.name);
      },
    });
  } catch (e) {
    throw refuse(`entry ${JSON.stringify(current)} cannot be inflated (${(e as Error).message}); the archive is damaged.`);
  }
  const files = new Map<string, Uint8Array>();
  for (const e of read) {
    const data = inflated[e.name];
    const expected = e.compression === 0 ? e.size : e.originalSize;
    if (data.byteLength !== expected) {
      throw refuse(`entry ${JSON.stringify(e.name)} is damaged: it declares ${expected} bytes but holds ${data.byteLength}.`);
    }
    files.set(e.name.slice(prefix.length), data);
  }
  return files;
}
