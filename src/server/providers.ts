/**
 * Where a stats server's document comes from: the shared status file, read
 * fresh at answer time without the lock (writers rename whole files into
 * place, so a reader never sees a partial one), with the gone workers
 * dropped and the listen queues measured from /proc at that moment, the way
 * uWSGI's master measures them when a stats client connects.
 */
import { readFile } from 'node:fs/promises';
import { buildDocument, type DocumentIdentity, type UwsgiDocument, type UwsgiWorker } from '../model/document.js';
import { parseStatus } from '../model/parse.js';
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
   * Called with a file that cannot be read or parsed; the document is then
   * built from `self` alone. Without it, such a file rejects the provider.
   */
  onFileError?: (error: Error) => void;
  /** Entries not refreshed for this long (ms) are dropped. Default: only entries whose pid is gone. */
  staleAfterMs?: number;
  /** Whether a process lives. Default: `process.kill(pid, 0)`. */
  isAlive?: (pid: number) => boolean;
  /** Measures accept queues. Default: /proc/net/tcp and tcp6, now. */
  measure?: typeof measureListenQueues;
}

/** A status file that holds something other than this library's document. */
export class StatusFileError extends Error {
  readonly code: 'EINVALIDJSON' | 'EFOREIGN';
  readonly path: string;

  constructor(code: 'EINVALIDJSON' | 'EFOREIGN', path: string) {
    super(code === 'EINVALIDJSON' ? `${path} holds invalid JSON` : `${path} is not a wsgi-status status file`);
    this.name = 'StatusFileError';
    this.code = code;
    this.path = path;
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
      const text = await readFile(options.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return '';
        throw error;
      });
      const parsed = parseStatus(text);
      if (parsed.problem === 'corrupt') throw new StatusFileError('EINVALIDJSON', options.path);
      if (parsed.problem === 'foreign' && parsed.workers.length === 0) throw new StatusFileError('EFOREIGN', options.path);
      workers = parsed.workers;
      fromFile = readIdentity(text);
    } catch (error) {
      if (!options.onFileError) throw error;
      options.onFileError(error as Error);
    }
    const now = Date.now();
    const staleAfter = options.staleAfterMs;
    workers = workers.filter((w) => isAlive(w.pid) && (staleAfter === undefined || now - w.last_update <= staleAfter));
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
