// How every case is timed, ours and the peers' alike.
//
//   warmup   run the work `warmup` times and wait: pipelines compile and buffers settle on first use
//   repeat   `repeats` times: submit `iters` runs back to back, then wait for the queue to drain once
//            (device.queue.onSubmittedWorkDone, never a readback) and divide by `iters`
//   report   the median of the repeats, with the min and max beside it
//
// `run` only encodes and submits; `sync` waits for the device. Nothing here knows which engine it
// times, so the same numbers mean the same thing for our kernels, TensorFlow.js and jax-js.

export interface TimeOptions {
  /** Untimed runs before the first repeat (first use compiles pipelines). */
  warmup: number;
  /** Runs submitted back to back inside one timed repeat. */
  iters: number;
  /** Timed repeats; the median is reported. */
  repeats: number;
}

export interface Timing {
  /** Median seconds per run. */
  median: number;
  min: number;
  max: number;
  /** Seconds per run of each repeat, in order. */
  samples: number[];
  iters: number;
  /** Seconds of the untimed warmup (first use: pipeline compilation, for jit engines tracing too). */
  warmupSeconds: number;
}

export function median(xs: number[]): number {
  if (xs.length === 0) throw new Error('median of no samples');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const now = () => performance.now() / 1000;

/** Times `run` (submit only) with `sync` (wait for the device) as described at the top of this file. */
export async function timeIt(run: () => unknown, sync: () => Promise<unknown>, opts: TimeOptions): Promise<Timing> {
  for (const [k, v] of Object.entries(opts)) {
    if (!Number.isInteger(v) || v < (k === 'warmup' ? 0 : 1)) throw new Error(`timeIt: ${k} must be a positive integer, got ${v}`);
  }
  const w0 = now();
  for (let i = 0; i < opts.warmup; i++) await run();
  await sync();
  const warmupSeconds = now() - w0;
  const samples: number[] = [];
  for (let r = 0; r < opts.repeats; r++) {
    const t0 = now();
    for (let i = 0; i < opts.iters; i++) await run();
    await sync();
    samples.push((now() - t0) / opts.iters);
  }
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples, iters: opts.iters, warmupSeconds };
}

/** Times an async job that already waits for its own result (generation, a STaR phase): median of repeats. */
export async function timeJob(job: () => Promise<unknown>, opts: { warmup: number; repeats: number }): Promise<Timing> {
  return timeIt(job, async () => {}, { ...opts, iters: 1 });
}

/**
 * Iterations per repeat so that one repeat takes about `targetSeconds`, from a single timed run
 * (clamped to [1, maxIters]). Keeps fast kernels above timer resolution and slow ones within budget.
 */
export function itersFor(secondsPerRun: number, targetSeconds: number, maxIters = 200): number {
  if (!(secondsPerRun > 0)) return maxIters;
  return Math.max(1, Math.min(maxIters, Math.round(targetSeconds / secondsPerRun)));
}

/** How long a case may take: seconds per timed repeat, repeats (median reported), a cap on timed seconds. */
export interface Budget {
  targetSeconds: number;
  repeats: number;
  maxSeconds?: number;
  /** Most runs per repeat (default 200); lazy engines hold every run's outputs until the sync. */
  maxIters?: number;
}

/**
 * Warms up once, times one run, then repeats with enough runs per repeat to fill `targetSeconds`
 * (one run per repeat when a run is already longer; that first timed run then counts as a repeat).
 * Stops repeating once `maxSeconds` of timed work have passed (at least one repeat always runs).
 */
export async function timeAdaptive(
  run: () => unknown,
  sync: () => Promise<unknown>,
  o: Budget,
): Promise<Timing> {
  const w0 = now();
  await run();
  await sync();
  const warmupSeconds = now() - w0;
  const t0 = now();
  await run();
  await sync();
  const first = now() - t0;
  const iters = itersFor(first, o.targetSeconds, o.maxIters);
  const samples = iters === 1 ? [first] : [];
  const maxSeconds = o.maxSeconds ?? Infinity;
  let spent = first;
  while (samples.length < o.repeats && (samples.length === 0 || spent < maxSeconds)) {
    const t = await timeIt(run, sync, { warmup: 0, iters, repeats: 1 });
    samples.push(t.median);
    spent += t.median * iters;
  }
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples, iters, warmupSeconds };
}
