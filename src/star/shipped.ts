// Base models that ship with the app, so that pressing Start goes straight to iteration 1 (the paper starts
// from a pretrained model too). Each is a model folder under models/<preset>/ (model.safetensors, config.json,
// the checks of its training), trained to mastery by the commands in its README.md; the page and the runner
// load its weights by the URL below (Vite turns it into a hashed asset of the build; in Node it is the file
// itself) and check their SHA-256, which a run's config records, so a run always resumes from the very base
// it started with.

/** A run config's reference to a shipped base model. */
export interface ShippedBaseRef {
  /** The folder under models/ (a key of SHIPPED_BASES). */
  shipped: string;
  /** SHA-256 of its model.safetensors, hex. */
  sha256: string;
}

interface ShippedBase {
  /** model.safetensors: a URL the browser can fetch, or a file: URL in Node. */
  url: URL;
  sha256: string;
}

/** Every shipped base model, by preset. The URLs are written out whole so that the bundler finds and emits each file. */
export const SHIPPED_BASES: Record<string, ShippedBase> = {
  demo: {
    url: new URL('../../models/demo/model.safetensors', import.meta.url),
    sha256: '8d6b06d40a30914c0b482ff6a99638f9c64a65b471a8caef568e0726af55d4b7',
  },
  five: {
    url: new URL('../../models/five/model.safetensors', import.meta.url),
    sha256: '8f20599997d10224bfba318a4f50087daec21caffaa39243b555d1205f9198de',
  },
};

/** The reference a preset puts in its config, or undefined when no such base ships. */
export function shippedRef(name: string): ShippedBaseRef | undefined {
  const b = SHIPPED_BASES[name];
  return b && { shipped: name, sha256: b.sha256 };
}

/** Hex SHA-256 of some bytes (Web Crypto: in the browser, its workers and Node alike). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as BufferSource));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** A shipped base's bytes, checked against the reference: a file that changed since the run began is refused. */
export async function checkShipped(ref: ShippedBaseRef, bytes: Uint8Array): Promise<Uint8Array> {
  const got = await sha256Hex(bytes);
  if (got !== ref.sha256) {
    throw new Error(
      `The shipped base model "${ref.shipped}" is not the one this run started from (SHA-256 ${got.slice(0, 12)}…, the run needs ${ref.sha256.slice(0, 12)}…). ` +
        'Start a new run, or train the base model from scratch.',
    );
  }
  return bytes;
}

/** Where a shipped base's base.safetensors is, or an error naming the known ones. */
export function shippedUrl(ref: ShippedBaseRef): URL {
  const b = SHIPPED_BASES[ref.shipped];
  if (!b) {
    const known = Object.keys(SHIPPED_BASES);
    throw new Error(`No base model named "${ref.shipped}" ships with this version${known.length ? ` (there are: ${known.join(', ')})` : ''}. Train the base model from scratch instead.`);
  }
  return b.url;
}

/** Reads a shipped base model by URL (fetch in the browser, the file in Node) and checks it. */
export async function loadShipped(ref: ShippedBaseRef, read: (url: URL) => Promise<Uint8Array>): Promise<Uint8Array> {
  return checkShipped(ref, await read(shippedUrl(ref)));
}
