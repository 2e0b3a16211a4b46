/**
 * The shared status file: read, merge and write under the lock.
 *
 * Readers never lock and never see a partial file: every write goes to a
 * temporary file in the same directory and is renamed over the target
 * (write-file-atomic). Writers serialise read-merge-write with the lock, so
 * each process replaces only its own slot and no update is lost.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { type ParsedStatus, parseStatus } from '../model/parse.js';
import { type HeldLock, type LockOptions, withLock, withLockSync } from './lock.js';

/** How the file is written. */
export interface StatusFileOptions {
  /** File mode of the status file. */
  mode: number;
  /** The lock's stale time and how long a writer waits for it. */
  lock: Omit<LockOptions, 'lockPath'>;
}

/** Turns what is in the file into the text to write. */
export type StatusMerge = (current: ParsedStatus) => string;

/** What one update found and did. */
export interface UpdateResult {
  /** What the file held before (with what had to be repaired). */
  previous: ParsedStatus;
  /** What was written. */
  text: string;
}

// write-file-atomic names its temporary files `<file>.<uint32>`.
const TEMP_SUFFIX = /^\.\d+$/;
// Under the lock no other writer is mid-write, but one whose lock was taken
// over (blocked event loop) may still be: leave young files alone.
const ORPHAN_AGE_MS = 5000;
const OWNER = process.getuid && process.getgid ? { uid: process.getuid(), gid: process.getgid() } : undefined;
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
    return parseStatus(await readFile(this.path, 'utf8').catch(ignoreMissing));
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
    const run = () =>
      withLock(this.path, { ...lock, waitMs, lockPath: this.lockPath }, async (held) => {
        this.holding = true;
        try {
          return await this.mergeAndWrite(merge, held, options.cleanOrphans === true);
        } finally {
          this.holding = false;
        }
      });
    if (!this.directoryReady) {
      // Before the first lock: proper-lockfile retries every failed mkdir of
      // the lock, ENOENT included, so a missing directory would cost a whole wait.
      await mkdir(dirname(this.path), { recursive: true });
      this.directoryReady = true;
    }
    try {
      return await run();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await mkdir(dirname(this.path), { recursive: true });
      return await run();
    }
  }

  private async mergeAndWrite(merge: StatusMerge, held: HeldLock, cleanOrphans: boolean): Promise<UpdateResult> {
    // A writer that lost the lock (blocked event loop) would overwrite the new holder's write.
    await held.assertHeld();
    // Read, merge and write synchronously: on tmpfs this blocks the event loop
    // for about 0.3 ms once per interval, and halves the tick's CPU time (the
    // async forms cost a thread-pool round trip and a promisify per call).
    const previous = parseStatus(readTextSync(this.path));
    const text = merge(previous);
    writeFileAtomic.sync(this.path, text, this.writeOptions());
    if (cleanOrphans) await this.removeOrphans();
    return { previous, text };
  }

  /**
   * The synchronous form, for process exit. When this process's own
   * {@link update} holds the lock right now, it writes under that lock.
   */
  updateSync(merge: StatusMerge): void {
    const write = () => {
      const previous = parseStatus(readTextSync(this.path));
      writeFileAtomic.sync(this.path, merge(previous), this.writeOptions());
    };
    if (this.holding) write();
    else
      withLockSync(
        this.path,
        { ...this.options.lock, waitMs: Math.min(EXIT_WAIT_MS, this.options.lock.waitMs), lockPath: this.lockPath },
        write,
      );
  }

  /**
   * No fsync: the file is rewritten every interval and rename alone keeps
   * readers from seeing a partial file. The writer's own owner: without an
   * explicit `chown` (`false` counts as none) write-file-atomic stats the old
   * file on every write to copy its owner.
   */
  private writeOptions(): writeFileAtomic.Options {
    return { mode: this.options.mode, chown: OWNER, fsync: false };
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
      const info = await stat(file).catch(() => null);
      if (info?.isFile() && now - info.mtimeMs > ORPHAN_AGE_MS) await unlink(file).catch(() => undefined);
    }
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return '';
  throw error;
}

function readTextSync(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    return ignoreMissing(error as NodeJS.ErrnoException);
  }
}
