/**
 * Where a stats server's document comes from: the shared status file, read
 * fresh at answer time without the lock (writers rename whole files into
 * place, so a reader never sees a partial one), with the gone workers
 * dropped and the listen queues measured from /proc at that moment, the way
 * uWSGI's master measures them when a stats client connects.
 *
 * The file is read the way the writers read it (store/safe-file.ts: no link
 * followed, no blocking on a FIFO, at most 16 MiB), and a file this library
 * did not write still gives a valid document: its workers when they have
 * uWSGI's shape (a real uWSGI's capture), else none (issue 13: the sidecar
 * answered such a file with an empty connection, which Netdata reports as
 * "unexpectedly disconnected").
 */
import { buildDocument, type DocumentIdentity, type UwsgiDocument, type UwsgiWorker } from '../model/document.js';
import { parseStatus, type StatusProblem } from '../model/parse.js';
import { readStatusTextSync } from '../store/safe-file.js';
import { lowestFreeId } from '../store/slots.js';
import { isProcessAlive } from '../system/liveness.js';
import { measureListenQueues, type NamedAddress } from '../system/proc.js';

/** Produces the document to serve, fresh for each client. */
export type DocumentProvider = () => Promise<UwsgiDocument>;

export type { DocumentIdentity } from '../model/document.js';

/** The answering process's own, fresh entry. */
export interface SelfEntry {
  worker: UwsgiWorker;
  /**
   * Whether `worker.id` is this process's slot by the file's word. When it is
   * not (before the first write), the entry takes the lowest id nobody holds.
   */
  assigned: boolean;
}

/** How {@link createStatusFileProvider} builds the document. */
export interface StatusFileProviderOptions {
  /** The status file. A missing file reads as no workers. */
  path: string;
  /**
   * The top level. Receives the one the file holds (written by the app's
   * workers), or `null` when the file has none yet.
   */
  identity: (fromFile: DocumentIdentity | null) => DocumentIdentity | Promise<DocumentIdentity>;
  /** The answering process's own entry, which replaces its slot from the file. */
  self?: () => SelfEntry | null | Promise<SelfEntry | null>;
  /**
   * Called with what was wrong with the file (a {@link StatusFileError}, or
   * an fs error such as EACCES); the document is then built from what could
   * be used (the file's uWSGI-shaped workers, or `self` alone). Without it,
   * a file that cannot be read or is not JSON rejects the provider, and
   * entries that are not uWSGI workers are dropped silently.
   */
  onFileError?: (error: Error) => void;
  /** Entries not refreshed for this long (ms) are dropped. Default: only entries whose pid is gone. */
  staleAfterMs?: number;
  /** Whether a process lives. Default: `process.kill(pid, 0)`. */
  isAlive?: (pid: number) => boolean;
  /** Measures accept queues. Default: /proc/net/tcp and tcp6, now. */
  measure?: typeof measureListenQueues;
}

/** What {@link StatusFileError} says was wrong with the file. */
export type StatusFileErrorCode = 'EINVALIDJSON' | 'EFOREIGN' | 'ESYMLINK' | 'ENOTREG' | 'ETOOLARGE';

const CODES: Record<StatusProblem, StatusFileErrorCode> = {
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

/**
 * A provider over the status file. The in-process server passes `self` (its
 * monitor's live snapshot); the `serve` sidecar and the CLI pass none.
 */
export function createStatusFileProvider(options: StatusFileProviderOptions): DocumentProvider {
  const isAlive = options.isAlive ?? isProcessAlive;
  const measure = options.measure ?? measureListenQueues;
  return async () => {
    let workers: UwsgiWorker[] = [];
    let fromFile: DocumentIdentity | null = null;
    try {
      const read = readStatusTextSync(options.path);
      const parsed =
        read.unusable === null
          ? parseStatus(read.text, { accept: 'uwsgi' })
          : { workers: [], retired: [], problem: read.unusable };
      workers = parsed.workers;
      if (read.unusable === null) fromFile = readIdentity(read.text);
      if (parsed.problem !== null) {
        const error = new StatusFileError(CODES[parsed.problem], options.path);
        if (options.onFileError) options.onFileError(error);
        else if (error.unusable) throw error;
      }
    } catch (error) {
      if (!options.onFileError || error instanceof StatusFileError) throw error;
      options.onFileError(error as Error);
    }
    const now = Date.now();
    const staleAfter = options.staleAfterMs;
    // A uWSGI capture's workers have no `last_update`: only their pid decides. Id and pid 0 are
    // a cheaped row (no process; uwsgi_exporter drops id 0 anyway).
    workers = workers.filter(
      (w) =>
        w.id >= 1 &&
        w.pid > 0 &&
        isAlive(w.pid) &&
        (staleAfter === undefined || typeof w.last_update !== 'number' || now - w.last_update <= staleAfter),
    );
    const self = await options.self?.();
    if (self) {
      const me = { ...self.worker };
      if (self.assigned) {
        workers = workers.filter((w) => w.pid !== me.pid && w.id !== me.id);
      } else {
        workers = workers.filter((w) => w.pid !== me.pid);
        me.id = lowestFreeId(new Set(workers.map((w) => w.id)));
      }
      workers.push(me);
    }
    const addresses: NamedAddress[] = workers.flatMap((w) => w.listen ?? []);
    const identity = await options.identity(fromFile);
    return buildDocument({ ...identity, queues: measure(addresses) }, workers);
  };
}

/** The app's identity as its workers wrote it, if the file holds a well-typed one. */
function readIdentity(text: string): DocumentIdentity | null {
  if (text.trim() === '') return null;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (data === null || typeof data !== 'object') return null;
  const { version, pid, uid, gid, cwd } = data as Record<string, unknown>;
  const uint = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (typeof version !== 'string' || typeof cwd !== 'string' || !uint(pid) || !uint(uid) || !uint(gid)) return null;
  return { version, pid, uid, gid, cwd };
}

/**
 * Wraps a provider so that clients arriving while a document is being built
 * share it: a burst of connections costs one file read and one /proc read.
 */
export function coalesce(provider: DocumentProvider): DocumentProvider {
  let pending: Promise<UwsgiDocument> | null = null;
  return () => {
    pending ??= provider().finally(() => {
      pending = null;
    });
    return pending;
  };
}
