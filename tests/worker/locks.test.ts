// The run locks over the Web Locks API, against a LockManager that follows the spec's rules for
// exclusive locks: ifAvailable grants null when held, and a lock lasts until its callback's promise settles.
import { describe, expect, it } from 'vitest';
import { memoryLocks, type RunLocks, webLocks } from '../../src/worker/locks';

function fakeLockManager(): LockManager {
  const held = new Map<string, Promise<unknown>>();
  return {
    async request(name: string, options: LockOptions | LockGrantedCallback<unknown>, cb?: LockGrantedCallback<unknown>) {
      const callback = (cb ?? options) as LockGrantedCallback<unknown>;
      const ifAvailable = typeof options === 'object' && options.ifAvailable;
      if (!ifAvailable) throw new Error('the fake only grants ifAvailable requests');
      if (held.has(name)) return callback(null);
      const result = Promise.resolve(callback({ name, mode: 'exclusive' } as Lock));
      held.set(name, result);
      try {
        return await result;
      } finally {
        held.delete(name);
      }
    },
    async query() {
      return { held: [...held.keys()].map((name) => ({ name, mode: 'exclusive' as const, clientId: 'tab' })), pending: [] };
    },
  } as LockManager;
}

function behaves(name: string, make: () => RunLocks) {
  it(`${name}: one holder per run, released on request`, async () => {
    const locks = make();
    const release = await locks.tryHold('a');
    expect(release).toBeTypeOf('function');
    expect(await locks.tryHold('a')).toBeNull();
    const b = await locks.tryHold('b');
    expect(await locks.held()).toEqual(new Set(['a', 'b']));
    release!();
    await new Promise((r) => setTimeout(r, 0));
    expect(await locks.held()).toEqual(new Set(['b']));
    const again = await locks.tryHold('a');
    expect(again).toBeTypeOf('function');
    again!();
    b!();
    await new Promise((r) => setTimeout(r, 0));
    expect(await locks.held()).toEqual(new Set());
  });
}

describe('run locks', () => {
  behaves('Web Locks', () => webLocks(fakeLockManager()));
  behaves('in memory', memoryLocks);

  it('Web Locks: lists only run locks, not the page\'s other locks', async () => {
    const manager = fakeLockManager();
    void manager.request('something-else', { ifAvailable: true }, () => new Promise(() => {}));
    const locks = webLocks(manager);
    await locks.tryHold('x');
    expect(await locks.held()).toEqual(new Set(['x']));
  });
});
