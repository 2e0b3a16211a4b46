/**
 * The shared status file: read, merge and write under the lock.
 *
 * Readers never lock and never see a partial file: every write goes to a
 * temporary file in the same directory and is renamed over the target
 * (safe-file.ts, which never follows a link or blocks on a special file).
 * Writers serialise read-merge-write with the lock, so each process replaces
 * only its own slot and no update is lost. Under the lock everything is
 * synchronous, and ownership is checked again right before the rename: a
 * holder whose event loop was blocked past the lock's stale time never writes
 * over the process that took the lock over (issue 13).
 */
import { randomInt } from 'node:crypto';
import { renameSync } from 'node:fs';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type ParsedStatus, parseStatus, type StatusProblem } from '../model/parse.js';
import { type HeldLock, type LockOptions, withBriefLock, withLockSync } from './lock.js';
import { MAX_STATUS_BYTES, makeDirectory, readStatusTextSync, replaceStatusFileSync } from './safe-file.js';

export { MAX_STATUS_BYTES } from './safe-file.js';

/** How the file is written. */
export interface StatusFileOptions {
  /** File mode of the status file (exact, whatever the umask). Directories the store creates get `directoryMode(mode)` (safe-file.ts). */
  mode: number;
  /** The lock's stale time and how long a writer waits for it. */
  lock: Omit<LockOptions, 'lockPath'>;
}

/** Turns what is in the file into the text to write. */
export type StatusMerge = (current: ParsedStatus) => string;

/** What one update found and did. */
export interface UpdateResult {
  /**
   * What the file held before. `previous.problem` says what had to be
   * repaired (see {@link StatusProblem}; {@link describeProblem} words it): a
   * `symlink`, `not-regular` or `too-large` file was never read and was
   * replaced by a fresh document, as a `corrupt` one is.
   */
  previous: ParsedStatus;
  /** What was written. */
  text: string;
}

// Temporary files are `<file>.<uint32>` (safe-file.ts, as write-file-atomic named them).
const TEMP_SUFFIX = /^\.\d+$/;
// Under the lock no other writer is mid-write, but one whose lock was taken
// over (blocked event loop) may still be: leave young files alone.
const ORPHAN_AGE_MS = 5000;
// At exit no event loop turns: wait for the lock only briefly (a holder keeps it for milliseconds).
const EXIT_WAIT_MS = 250;

export class StatusFile {
  readonly path: string;
  readonly lockPath: string;
  private readonly options: StatusFileOptions;
  /** True while this process's {@link update} holds the lock. */
  private holding = false;
  /** The directory was there (or made) at the first update. */
  private directoryReady = false;

  constructor(path: string, options: StatusFileOptions) {
    this.path = path;
    this.lockPath = `${path}.lock`;
    this.options = options;
  }

  /** Reads the file without the lock (as a reader does). A missing file reads as empty. */
  async read(): Promise<ParsedStatus> {
    return readParsedSync(this.path);
  }

  /**
   * Lock, read, merge, write atomically, unlock. Rejects with `code: 'ELOCKED'`
   * when the lock stays busy for `lock.waitMs`: the caller skips this tick;
   * with `code: 'ECOMPROMISED'` when the lock was lost before the write.
   * A `final` update (a process removing its slot) waits long enough to
   * outlast a dead holder's stale lock, since nothing retries it later.
   * A missing directory is created.
   */
  async update(merge: StatusMerge, options: { cleanOrphans?: boolean; final?: boolean } = {}): Promise<UpdateResult> {
    const lock = this.options.lock;
    const waitMs = options.final === true ? lock.staleMs + lock.waitMs : lock.waitMs;
    // Synchronous from lock to unlock: nothing else of ours runs while we hold it.
    const run = () =>
      withBriefLock(this.path, { ...lock, waitMs, lockPath: this.lockPath }, (held) => {
        this.holding = true;
        try {
          return this.mergeAndWrite(merge, held);
        } finally {
          this.holding = false;
        }
      });
    if (!this.directoryReady) {
      // Before the first lock: proper-lockfile retries every failed mkdir of
      // the lock, ENOENT included, so a missing directory would cost a whole wait.
      await makeDirectory(dirname(this.path), this.options.mode);
      this.directoryReady = true;
    }
    let result: UpdateResult & { discarded?: string };
    try {
      result = await run();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await makeDirectory(dirname(this.path), this.options.mode);
      result = await run();
    }
    // After the unlock, asynchronously: no other writer may wait on these.
    if (result.discarded !== undefined) await unlink(result.discarded).catch(() => undefined);
    if (options.cleanOrphans === true) await this.removeOrphans();
    return { previous: result.previous, text: result.text };
  }

  private mergeAndWrite(merge: StatusMerge, held: HeldLock): UpdateResult & { discarded?: string } {
    // Read, merge and write synchronously: on tmpfs this blocks the event loop
    // for about 0.3 ms once per interval, and halves the tick's CPU time (the
    // async forms cost a thread-pool round trip and a promisify per call).
    const previous = readParsedSync(this.path);
    const text = merge(previous);
    // Renaming over a file of tens of megabytes frees its blocks within the
    // rename (measured: 9 ms for 50 MB on ext4, on the event loop). Moved
    // aside instead (a rename of a name), it is unlinked after the unlock, in
    // the thread pool; the orphan sweep takes it if this process dies first.
    let discarded: string | undefined;
    if (previous.problem === 'too-large') {
      discarded = `${this.path}.${randomInt(0x1_0000_0000)}`;
      try {
        renameSync(this.path, discarded);
      } catch {
        discarded = undefined;
      }
    }
    // Checked last, right before the rename: a writer that lost the lock while
    // reading or merging (blocked event loop) would overwrite the new holder's write.
    replaceStatusFileSync(this.path, text, this.options.mode, () => held.assertHeld());
    return { previous, text, discarded };
  }

  /**
   * The synchronous form, for process exit. When this process's own
   * {@link update} holds the lock right now, it writes under that lock.
   */
  updateSync(merge: StatusMerge): void {
    const write = () => replaceStatusFileSync(this.path, merge(readParsedSync(this.path)), this.options.mode);
    if (this.holding) write();
    else
      withLockSync(
        this.path,
        { ...this.options.lock, waitMs: Math.min(EXIT_WAIT_MS, this.options.lock.waitMs), lockPath: this.lockPath },
        write,
      );
  }

  /** Temporary files of writers that were killed between write and rename. */
  private async removeOrphans(): Promise<void> {
    const directory = dirname(this.path);
    const prefix = basename(this.path);
    const names = await readdir(directory).catch(() => [] as string[]);
    const now = Date.now();
    for (const name of names) {
      if (!name.startsWith(prefix) || !TEMP_SUFFIX.test(name.slice(prefix.length))) continue;
      const file = join(directory, name);
      const info = await lstat(file).catch(() => null);
      if (info?.isFile() && now - info.mtimeMs > ORPHAN_AGE_MS) await unlink(file).catch(() => undefined);
    }
  }
}

/** The file as the store reads it: what cannot be read safely counts as empty, with its problem. */
export function readParsedSync(path: string): ParsedStatus {
  const read = readStatusTextSync(path);
  if (read.unusable !== null) return { processes: [], slots: [], problem: read.unusable };
  return parseStatus(read.text);
}

/** One line saying what was wrong with the file and what the store did about it (for a report). */
export function describeProblem(problem: StatusProblem, path: string): string {
  switch (problem) {
    case 'corrupt':
      return `wsgi-status: ${path} held invalid JSON; it was replaced`;
    case 'foreign':
      return `wsgi-status: ${path} held entries this library did not write; they were dropped`;
    case 'symlink':
      return `wsgi-status: ${path} was a symbolic link; it was replaced by a regular file (the link was not followed)`;
    case 'not-regular':
      return `wsgi-status: ${path} was not a regular file (a FIFO, socket or device); it was replaced without being opened for reading`;
    case 'too-large':
      return `wsgi-status: ${path} was larger than ${MAX_STATUS_BYTES / 1024 / 1024} MiB; it was replaced without being read`;
  }
}

/** What {@link StatusFileError} says was wrong with the file. */
export type StatusFileErrorCode = 'EINVALIDJSON' | 'EFOREIGN' | 'ESYMLINK' | 'ENOTREG' | 'ETOOLARGE';

/** The {@link StatusFileError} code of each problem a read can find. */
export const PROBLEM_CODES: Record<StatusProblem, StatusFileErrorCode> = {
  corrupt: 'EINVALIDJSON',
  foreign: 'EFOREIGN',
  symlink: 'ESYMLINK',
  'not-regular': 'ENOTREG',
  'too-large': 'ETOOLARGE',
};

const MESSAGES: Record<StatusFileErrorCode, string> = {
  EINVALIDJSON: 'holds invalid JSON',
  EFOREIGN: 'holds entries that are not uWSGI workers; they were left out',
  ESYMLINK: 'is a symbolic link (not followed)',
  ENOTREG: 'is not a regular file (not read)',
  ETOOLARGE: 'is larger than 16 MiB (not read)',
};

/** A status file that holds something other than a status document (or is not a file at all). */
export class StatusFileError extends Error {
  readonly code: StatusFileErrorCode;
  readonly path: string;

  constructor(code: StatusFileErrorCode, path: string) {
    super(`${path} ${MESSAGES[code]}`);
    this.name = 'StatusFileError';
    this.code = code;
    this.path = path;
  }

  /** Whether nothing of the file could be used (as opposed to some entries left out). */
  get unusable(): boolean {
    return this.code !== 'EFOREIGN';
  }
}
