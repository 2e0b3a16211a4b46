/**
 * Reading and replacing the status file on hostile ground (DESIGN.md, "The
 * status path is hostile ground"; issue 13). Anything can sit at the path or
 * appear there between two ticks: a FIFO (open() blocks until a writer comes:
 * measured, every worker hung), a symlink to /dev/zero (a whole-file read grew
 * a worker to 1.7 GB and aborted it), a 600 MB file (re-read by every worker
 * every tick, never repaired), a symlink planted by another local user (a
 * root app overwrote the link's target), a directory, a socket.
 *
 * So a read looks before it opens (lstat), opens without following a link and
 * without blocking (O_NOFOLLOW | O_NONBLOCK), checks what it opened (fstat)
 * and reads at most {@link MAX_STATUS_BYTES}. Anything that is not a small
 * regular file is reported as unusable and never read.
 *
 * A write never goes through a link either. write-file-atomic 7 cannot promise
 * that: it resolves the path with realpath() and renames over the link's
 * target, and opens its temporary file with plain 'w' (a link planted at the
 * temporary name is followed too). So the temporary file is created here with
 * O_CREAT | O_EXCL | O_NOFOLLOW in the same directory and renamed over the
 * path: rename(2) replaces a link itself, never its target, and replaces a
 * FIFO, a socket or a huge file just the same. Only a directory cannot be
 * replaced (EISDIR): the write fails and the caller reports it.
 *
 * Everything here is synchronous: on tmpfs each call is a few microseconds,
 * and the asynchronous forms would cost a thread-pool round trip each.
 */
import { randomInt } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  type Stats,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import type { StatusProblem } from '../model/parse.js';

/**
 * The largest status file read: 16 MiB. A real document is far smaller (one
 * with 1,000 workers is about 1.5 MB); anything bigger is someone else's
 * file, and reading it whole would stall the event loop and grow the heap.
 */
export const MAX_STATUS_BYTES = 16 * 1024 * 1024;

/** Why what sits at the path was not read. */
export type UnusableReason = Extract<StatusProblem, 'symlink' | 'not-regular' | 'too-large'>;

/** What a read found: the text, or why there was none to trust. */
export type SafeRead = { text: string; unusable: null } | { text: ''; unusable: UnusableReason };

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const EMPTY: SafeRead = { text: '', unusable: null };

function unusableFor(info: Stats): UnusableReason | null {
  if (info.isSymbolicLink()) return 'symlink';
  if (!info.isFile()) return 'not-regular';
  if (info.size > MAX_STATUS_BYTES) return 'too-large';
  return null;
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/**
 * Reads the status file's text without following a link, without blocking on
 * a special file and without reading more than {@link MAX_STATUS_BYTES}.
 * A missing file reads as empty text. Other errors (EACCES...) throw.
 */
export function readStatusTextSync(path: string): SafeRead {
  let info: Stats;
  try {
    // Look before opening: opening a device or a FIFO can have effects of its own.
    info = lstatSync(path);
  } catch (error) {
    if (code(error) === 'ENOENT') return EMPTY;
    throw error;
  }
  const seen = unusableFor(info);
  if (seen !== null) return { text: '', unusable: seen };
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (error) {
    // Replaced since the lstat: gone, now a link (ELOOP), or a socket (ENXIO).
    if (code(error) === 'ENOENT') return EMPTY;
    if (code(error) === 'ELOOP') return { text: '', unusable: 'symlink' };
    if (code(error) === 'ENXIO') return { text: '', unusable: 'not-regular' };
    throw error;
  }
  try {
    const opened = unusableFor(fstatSync(fd));
    if (opened !== null) return { text: '', unusable: opened };
    const text = readAtMost(fd, MAX_STATUS_BYTES);
    return text === null ? { text: '', unusable: 'too-large' } : { text, unusable: null };
  } finally {
    closeSync(fd);
  }
}

// The first 64 KiB of every read go to one buffer, reused (the text is copied
// out before the read returns): a fresh one at every tick was an allocation,
// page faults and GC accounting of its own.
const FIRST_READ_BYTES = 64 * 1024;
let firstReadBuffer: Buffer | undefined;

/** The file's text, or null when it holds more than `limit` bytes (it may grow after the fstat). */
function readAtMost(fd: number, limit: number): string | null {
  firstReadBuffer ??= Buffer.allocUnsafe(FIRST_READ_BYTES);
  let buffer = limit + 1 >= FIRST_READ_BYTES ? firstReadBuffer : Buffer.allocUnsafe(limit + 1);
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (length > limit) return null;
      const bigger = Buffer.allocUnsafe(Math.min(limit + 1, buffer.length * 4));
      buffer.copy(bigger, 0, 0, length);
      buffer = bigger;
    }
    const read = readSync(fd, buffer, length, buffer.length - length, null);
    if (read === 0) break;
    length += read;
  }
  return length > limit ? null : buffer.toString('utf8', 0, length);
}

/**
 * Replaces the file at `path` with `text`: a new temporary file
 * `<path>.<uint32>` (the name write-file-atomic used, so the orphan sweep
 * finds leftovers of either), created exclusively without following links,
 * given exactly `mode` (not masked by the umask), then renamed over `path`.
 * `beforeRename` runs last, right before the rename (the lock check); when it
 * throws, or anything fails, the temporary file is removed and the error thrown.
 * No fsync: the file is rewritten every interval and rename alone keeps
 * readers from ever seeing a partial file.
 */
export function replaceStatusFileSync(path: string, text: string, mode: number, beforeRename?: () => void): void {
  let temp = '';
  let fd = -1;
  for (let attempt = 0; fd === -1; attempt++) {
    temp = `${path}.${randomInt(0x1_0000_0000)}`;
    try {
      fd = openSync(temp, WRITE_FLAGS, mode);
    } catch (error) {
      // Someone else's file (or a planted link) under that name: pick another.
      if (code(error) !== 'EEXIST' || attempt >= 4) throw error;
    }
  }
  try {
    try {
      fchmodSync(fd, mode);
      writeFileSync(fd, text);
    } finally {
      closeSync(fd);
    }
    beforeRename?.();
    renameSync(temp, path);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // Already gone.
    }
    throw error;
  }
}

/**
 * The mode of a directory the library creates for the status file: search
 * (x) wherever `mode` lets read, never write for group or others, so nobody
 * else can plant anything at the path. 0755 for 0644, 0750 for 0640, 0700 for 0600.
 */
export function directoryMode(fileMode: number): number {
  const read = fileMode & 0o044;
  return 0o700 | read | (read >> 2);
}

/** Creates `directory` and any missing parents with exactly {@link directoryMode} (whatever the umask). */
export async function makeDirectory(directory: string, fileMode: number): Promise<void> {
  const mode = directoryMode(fileMode);
  const first = await mkdir(directory, { recursive: true, mode });
  if (first === undefined) return;
  // mkdir's mode is masked by the umask: set it on each directory this call made.
  let current = first;
  const rest = relative(first, directory).split(sep).filter(Boolean);
  await chmod(current, mode);
  for (const part of rest) {
    current = `${current}${sep}${part}`;
    await chmod(current, mode);
  }
}
