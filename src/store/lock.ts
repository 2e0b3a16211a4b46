/**
 * The only place that knows `proper-lockfile`. It has had no release since
 * 2021 (pinned at 4.1.2), so it stays behind these two functions and can be
 * replaced without touching anything else.
 *
 * The lock is a directory, `<file>.lock`, created with mkdir (atomic on every
 * file system). A holder that dies leaves it behind; others treat it as stale
 * once its mtime is older than `staleMs` and take it over, so a crash blocks
 * the others for at most `staleMs` plus one retry.
 *
 * A holder whose event loop was blocked past `staleMs` may have lost the lock
 * to such a takeover without knowing it yet: proper-lockfile only notices on
 * its next refresh timer, and its `release()` removes the lock directory
 * blindly, i.e. the new holder's. So before writing and before releasing we
 * check that the directory is still the one proper-lockfile last stamped.
 *
 * {@link withBriefLock} is the tick's form: for a synchronous task, a free
 * lock is taken with one mkdir and given back with one rmdir, the same
 * directory under the same rule, so it and proper-lockfile exclude each other
 * (across versions of this library too); a busy one goes through
 * proper-lockfile's waits and stale takeover.
 */
import { mkdirSync, realpathSync, rmdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
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

/** What the task run under the lock can ask of it. */
export interface HeldLock {
  /**
   * Returns while the lock is still ours with a safe margin before others may
   * call it stale; throws with code `ECOMPROMISED` otherwise. Synchronous (two
   * stat-sized checks), so it can run right before the rename that must not
   * race another holder, with nothing in between.
   */
  assertHeld(): void;
}

/** Thrown (as `code: 'ELOCKED'`) when the lock could not be taken within `waitMs`. */
export const LOCK_BUSY = 'ELOCKED';
/** Thrown (as `code: 'ECOMPROMISED'`) when the lock was lost while held; the write was skipped. */
export const LOCK_LOST = 'ECOMPROMISED';

/** proper-lockfile 4.1.2's record of a lock it holds (lib/lockfile.js, `locks[file]`). */
interface ProperLock {
  mtime: Date;
  lastUpdate: number;
  released?: boolean;
  updateTimeout?: NodeJS.Timeout | null;
}

// index.js does not re-export getLocks(); lib/lockfile.js is the same module
// instance it wraps. The only way to know the mtime proper-lockfile last gave
// the lock (it refreshes it every staleMs / 2). Safe because the version is pinned.
const internals = createRequire(import.meta.url)('proper-lockfile/lib/lockfile.js') as {
  getLocks(): Record<string, ProperLock>;
};

type Callback<T> = (error: NodeJS.ErrnoException | null, result?: T) => void;

/** Calls a synchronous fs function and hands its outcome to a node-style callback (outside the try, so a throwing callback is not reported as an fs error). */
function settle<T>(operation: () => T, callback: Callback<T>): void {
  let result: T;
  try {
    result = operation();
  } catch (error) {
    callback(error as NodeJS.ErrnoException);
    return;
  }
  callback(null, result);
}

/**
 * The file-system calls proper-lockfile makes (mkdir, stat, utimes, rmdir;
 * realpath unused), done synchronously. Each is one syscall of a few
 * microseconds on a local file system, where the default asynchronous
 * graceful-fs forms cost a thread-pool round trip each: this halves the
 * CPU time of taking and releasing the lock. It is what proper-lockfile's
 * own lockSync() does; the retry timers stay asynchronous.
 */
const syncFs = {
  mkdir: (path: string, callback: Callback<void>) => settle(() => mkdirSync(path), callback),
  stat: (path: string, callback: Callback<ReturnType<typeof statSync>>) => settle(() => statSync(path), callback),
  rmdir: (path: string, callback: Callback<void>) => settle(() => rmdirSync(path), callback),
  utimes: (path: string, atime: Date, mtime: Date, callback: Callback<void>) =>
    settle(() => utimesSync(path, atime, mtime), callback),
  realpath: (path: string, callback: Callback<string>) => settle(() => realpathSync(path), callback),
};

/** The lock directory's mtime in milliseconds (proper-lockfile's precision), or null when it cannot be read. */
function lockMtime(lockPath: string): number | null {
  try {
    return statSync(lockPath).mtime.getTime();
  } catch {
    return null;
  }
}

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
  // `retry` multiplies each delay by 1–2 when randomised: plan for the worst
  // case so the whole wait still fits in `waitMs` (one tick).
  while (total + Math.min(maxTimeout, 2 * delay) <= waitMs) {
    total += Math.min(maxTimeout, 2 * delay);
    retries++;
    delay = Math.min(maxTimeout, delay * factor);
  }
  return { retries: Math.max(1, retries), minTimeout, maxTimeout, factor, randomize: true };
}

function lockLost(message: string, cause?: unknown): Error {
  return Object.assign(new Error(`wsgi-status: ${message}`, { cause }), { code: LOCK_LOST });
}

/**
 * Whether a lock last stamped at `stampedAt` is too close to stale to write
 * under: others call it stale `staleMs` after its last stamp, and a holder
 * keeps a quarter of that as margin for its write.
 */
function pastMargin(stampedAt: number, options: LockOptions): boolean {
  return Date.now() - stampedAt > (options.staleMs * 3) / 4;
}

function heldTooLong(options: LockOptions): Error {
  return lockLost(`the lock ${options.lockPath} was held too long (event loop blocked); write skipped`);
}

/**
 * Runs `task` while holding the lock on `file`. Rejects with code `ELOCKED`
 * when it is busy, and with `ECOMPROMISED` when the task's
 * {@link HeldLock.assertHeld} found the lock taken over.
 */
export async function withLock<T>(file: string, options: LockOptions, task: (lock: HeldLock) => T | Promise<T>): Promise<T> {
  // proper-lockfile keys its locks by path.resolve(file) when realpath is false.
  const key = resolve(file);
  // Once per lock, and never after our own release: proper-lockfile's refresh
  // timer may have a stat in flight that still reports it.
  let settled = false;
  const lost = (error: Error): Error => {
    if (!settled) options.onCompromised(error);
    settled = true;
    return error;
  };
  const release = await lockfile.lock(file, {
    lockfilePath: options.lockPath,
    realpath: false,
    stale: options.staleMs,
    retries: retryPlan(options.waitMs),
    fs: syncFs,
    onCompromised: (error) => lost(lockLost(`the lock ${options.lockPath} was taken over while held`, error)),
  });
  const held = internals.getLocks()[key];
  const ours = (): boolean => {
    if (held === undefined || held.released || internals.getLocks()[key] !== held) return false;
    return lockMtime(options.lockPath) === held.mtime.getTime();
  };
  const lock: HeldLock = {
    assertHeld: () => {
      if (!ours()) throw lost(lockLost(`the lock ${options.lockPath} was taken over while held; write skipped`));
      if (pastMargin(held.lastUpdate, options)) throw heldTooLong(options);
    },
  };
  try {
    return await task(lock);
  } finally {
    if (ours()) {
      settled = true;
      // A compromised lock rejects here; the lock is someone else's by then.
      await release().catch(() => undefined);
    } else if (held !== undefined && !held.released) {
      // Someone took it over: forget it the way proper-lockfile would on its
      // next refresh, without removing the new holder's directory.
      held.released = true;
      if (held.updateTimeout) clearTimeout(held.updateTimeout);
      if (internals.getLocks()[key] === held) delete internals.getLocks()[key];
      lost(lockLost(`the lock ${options.lockPath} was taken over while held`));
    }
  }
}

/**
 * Runs a synchronous `task` holding the lock on `file`, as {@link withLock}
 * does, but cheaper while the lock is free: one mkdir of the lock directory,
 * the task, one rmdir. That is all the protocol asks: others take a lock over
 * only once its mtime is `staleMs` old, so a holder whose task is done well
 * within that needs no refresh timer and no stat to know the lock is still
 * its own. On tmpfs, 20 ms and 200 ms after the last lock, proper-lockfile's
 * path (retry plan, mtime probe, refresh timer, promises) cost 285 and 412 µs;
 * this one 106 and 131.
 * When the directory exists (another holder, or a leftover), this is
 * {@link withLock}: proper-lockfile waits, and takes a stale one over.
 */
export async function withBriefLock<T>(file: string, options: LockOptions, task: (lock: HeldLock) => T): Promise<T> {
  const acquiredAt = Date.now();
  try {
    mkdirSync(options.lockPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return withLock(file, options, task);
    throw error;
  }
  // Stamped by the mkdir, never refreshed: ours while within the margin.
  const lock: HeldLock = {
    assertHeld: () => {
      if (pastMargin(acquiredAt, options)) throw heldTooLong(options);
    },
  };
  try {
    return task(lock);
  } finally {
    releaseBrief(options, acquiredAt);
  }
}

/** Removes a lock {@link withBriefLock} took, unless it was taken over meanwhile. */
function releaseBrief(options: LockOptions, acquiredAt: number): void {
  if (pastMargin(acquiredAt, options)) {
    // Held past the margin (a stopped process, a slow file system): a takeover's
    // directory was made `staleMs` or more after ours, so its mtime tells them apart.
    const mtime = lockMtime(options.lockPath);
    if (mtime === null || mtime >= acquiredAt + options.staleMs / 2) {
      options.onCompromised(lockLost(`the lock ${options.lockPath} was taken over while held`));
      return;
    }
  }
  try {
    rmdirSync(options.lockPath);
  } catch {
    // Already gone: nothing of ours to remove.
  }
}

// A synchronous sleep for the exit path, where no event loop turns.
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * The synchronous form, for process exit: a few attempts within `waitMs`
 * (another worker holds the lock for milliseconds at a time).
 */
export function withLockSync<T>(file: string, options: LockOptions, task: () => T): T {
  const deadline = Date.now() + options.waitMs;
  let release: () => void;
  for (let pause = 5; ; pause = Math.min(50, pause * 2)) {
    try {
      release = lockfile.lockSync(file, {
        lockfilePath: options.lockPath,
        realpath: false,
        stale: options.staleMs,
        onCompromised: options.onCompromised,
      });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== LOCK_BUSY || Date.now() + pause > deadline) throw error;
      Atomics.wait(sleeper, 0, 0, pause);
    }
  }
  try {
    return task();
  } finally {
    try {
      // Checked as in withLock: never remove a lock someone took over from us.
      const held = internals.getLocks()[resolve(file)];
      if (held !== undefined && lockMtime(options.lockPath) === held.mtime.getTime()) release();
    } catch {
      // Compromised or already gone: nothing of ours to release.
    }
  }
}
