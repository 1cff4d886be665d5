// What each iteration works on, drawn from the run's seeds alone (so a replay or a resume draws the same):
// the held-out evaluation set, the training pool, and each iteration's sample from the pool, uniform (the
// paper) or weighted toward the categories the last model fails ('frontier').

import type { StarConfig } from './config';
import type { EvaluateOutput, TaskAdapter } from './types';
import { rng, shuffle } from '../util/random';

/** A 32-bit seed for one purpose of the run (FNV-1a of "seed/part/part"), so draws never share a stream. */
export function deriveSeed(seed: number, ...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of [seed, ...parts].join('/')) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** The held-out evaluation set, drawn before the pool so that the pool can leave it out. */
export function evaluationSet<P>(cfg: StarConfig, task: TaskAdapter<P>): P[] {
  return task.evalProblems(cfg.evalSize, cfg.evalSeed);
}

/** The training pool, drawn once per run (the task keeps evaluation problems out of it where it can). */
export function trainingPool<P>(cfg: StarConfig, task: TaskAdapter<P>): P[] {
  return task.trainProblems(cfg.poolSize, deriveSeed(cfg.seed, 'pool'));
}

/** How many of the pool's problems are also evaluation problems (where the task could not keep them apart). */
export function poolOverlap<P>(cfg: StarConfig, task: TaskAdapter<P>, pool: P[]): number {
  const held = new Set(evaluationSet(cfg, task).map((p) => JSON.stringify(task.toJSON(p))));
  return pool.reduce((n, p) => n + (held.has(JSON.stringify(task.toJSON(p))) ? 1 : 0), 0);
}

/** The floor of a category's weight under 'frontier' sampling: a mastered category still gets a share. */
const FRONTIER_FLOOR = 0.05;

/**
 * Per-category weights of iteration `it`'s draw: none for 'uniform' sampling (or before any evaluation);
 * for 'frontier', max(floor, 1 - accuracy) of the model that will generate (M_{it-1}'s evaluation).
 */
export function sampleWeights(cfg: StarConfig, prev: EvaluateOutput | undefined): Record<string, number> | undefined {
  if (cfg.sampling !== 'frontier' || prev === undefined) return undefined;
  return Object.fromEntries(Object.entries(prev.byCategory).map(([c, r]) => [c, Math.max(FRONTIER_FLOOR, 1 - r.correct / r.total)]));
}

/**
 * Iteration `it`'s problems: `cfg.trainSize` drawn from the pool without replacement. With category weights,
 * the pool is walked in a seeded order and each problem taken with probability weight / largest weight (a
 * category the weights do not name counts as the largest); if the walk ends short, the skipped problems fill
 * the rest in the same order.
 */
export function iterationSample<P>(
  cfg: StarConfig, pool: P[], it: number, weights?: Record<string, number>, category?: (p: P) => string,
): P[] {
  const r = rng(deriveSeed(cfg.seed, 'sample', it));
  const order = shuffle(Array.from({ length: pool.length }, (_, i) => i), r);
  if (!weights || !category) return order.slice(0, cfg.trainSize).map((i) => pool[i]);
  const top = Math.max(...Object.values(weights), 0) || 1;
  const taken: number[] = [];
  const skipped: number[] = [];
  for (const i of order) {
    if (taken.length === cfg.trainSize) break;
    const w = weights[category(pool[i])] ?? top;
    (r() < w / top ? taken : skipped).push(i);
  }
  return [...taken, ...skipped].slice(0, cfg.trainSize).map((i) => pool[i]);
}
