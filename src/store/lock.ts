/**
 * The only place that knows `proper-lockfile`. It has had no release since
 * 2021 (pinned at 4.1.2), so it stays behind these two functions and can be
 * replaced without touching anything else.
 *
 * The lock is a directory, `<file>.lock`, created with mkdir (atomic on every
 * file system). A holder that dies leaves it behind; others treat it as stale
 * once its mtime is older than `staleMs` and take it over, so a crash blocks
 * the others for at most `staleMs` plus one retry.
 */
import lockfile from 'proper-lockfile';

/** How to take the lock. */
export interface LockOptions {
  /** The lock directory's path. */
  lockPath: string;
  /** After how long an unrefreshed lock is someone's leftover (proper-lockfile's minimum is 2000). */
  staleMs: number;
  /** Give up after about this long; the caller skips its tick rather than queue it. */
  waitMs: number;
  /**
   * Called when the lock turned out to be taken over while held (our event
   * loop was blocked past `staleMs`). proper-lockfile's default throws from a
   * timer, which would crash the app.
   */
  onCompromised: (error: Error) => void;
}

/** Thrown (as `code: 'ELOCKED'`) when the lock could not be taken within `waitMs`. */
export const LOCK_BUSY = 'ELOCKED';

function retryPlan(waitMs: number): {
  retries: number;
  minTimeout: number;
  maxTimeout: number;
  factor: number;
  randomize: boolean;
} {
  const minTimeout = Math.min(50, Math.max(5, Math.floor(waitMs / 20)));
  const maxTimeout = Math.min(250, Math.max(minTimeout, Math.floor(waitMs / 4)));
  const factor = 1.5;
  let retries = 0;
  let total = 0;
  let delay = minTimeout;
  while (total + delay <= waitMs) {
    total += delay;
    retries++;
    delay = Math.min(maxTimeout, delay * factor);
  }
  return { retries: Math.max(1, retries), minTimeout, maxTimeout, factor, randomize: true };
}

/** Runs `task` while holding the lock on `file`. Rejects with code `ELOCKED` when it is busy. */
export async function withLock<T>(file: string, options: LockOptions, task: () => Promise<T>): Promise<T> {
  const release = await lockfile.lock(file, {
    lockfilePath: options.lockPath,
    realpath: false,
    stale: options.staleMs,
    retries: retryPlan(options.waitMs),
    onCompromised: options.onCompromised,
  });
  try {
    return await task();
  } finally {
    // A compromised lock rejects here; the lock is someone else's by then.
    await release().catch(() => undefined);
  }
}

/** The synchronous form, for process exit; one attempt, no waiting. */
export function withLockSync<T>(file: string, options: Omit<LockOptions, 'waitMs'>, task: () => T): T {
  const release = lockfile.lockSync(file, {
    lockfilePath: options.lockPath,
    realpath: false,
    stale: options.staleMs,
    onCompromised: options.onCompromised,
  });
  try {
    return task();
  } finally {
    try {
      release();
    } catch {
      // Compromised or already gone: nothing of ours to release.
    }
  }
}
