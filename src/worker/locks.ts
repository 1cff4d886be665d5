// One run, one tab. The worker that runs a run holds a lock named after it; every tab and worker of the
// page's origin sees the same locks (the Web Locks API, navigator.locks), so a second tab cannot resume
// or delete a run that is going in the first. The browser releases a lock when its holder ends: a run
// finishing or pausing, Stop terminating the worker, the tab closing or reloading.

export interface RunLocks {
  /** Takes the run's lock and returns its release, or null when someone else holds it. */
  tryHold(runId: string): Promise<(() => void) | null>;
  /** Ids of the runs whose lock is held, by anyone (this worker included). */
  held(): Promise<Set<string>>;
}

const PREFIX = 'star-run:';

/** Locks shared by every tab of the origin. */
export function webLocks(locks: LockManager): RunLocks {
  return {
    tryHold: (runId) =>
      new Promise((resolve, reject) => {
        locks
          .request(PREFIX + runId, { ifAvailable: true }, (lock) => {
            if (!lock) return resolve(null);
            // The lock is held until this promise settles: until release() is called.
            return new Promise<void>((release) => resolve(() => release()));
          })
          .catch(reject);
      }),
    held: async () => {
      const { held = [] } = await locks.query();
      return new Set(held.flatMap((l) => (l.name?.startsWith(PREFIX) ? [l.name.slice(PREFIX.length)] : [])));
    },
  };
}

/** Locks within one JavaScript realm: where the Web Locks API is missing, and in tests (two engines sharing one play two tabs). */
export function memoryLocks(): RunLocks {
  const taken = new Set<string>();
  return {
    async tryHold(runId) {
      if (taken.has(runId)) return null;
      taken.add(runId);
      let released = false;
      return () => {
        if (!released) taken.delete(runId);
        released = true;
      };
    },
    held: async () => new Set(taken),
  };
}

/** The origin's locks where the API exists (every current browser, in windows and workers), else this realm's. */
export function defaultLocks(): RunLocks {
  const nav = (globalThis as { navigator?: { locks?: LockManager } }).navigator;
  return nav?.locks ? webLocks(nav.locks) : memoryLocks();
}
