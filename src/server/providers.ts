/**
 * Where a stats server's document comes from: the shared status file, read
 * fresh at answer time without the lock (writers rename whole files into
 * place, so a reader never sees a partial one), its rows recomputed from the
 * file's ledger as a writer would (a process that is gone shown by no row,
 * its slot `cheap` if nobody else serves in it; a stuck one `busy`), and the
 * listen queues measured from /proc at that moment, the way uWSGI's master
 * measures them when a stats client connects.
 */
import { readFile } from 'node:fs/promises';
import { buildDocument, type DocumentIdentity, type UwsgiDocument, type UwsgiWorker } from '../model/document.js';
import { type ParsedStatus, parseStatus } from '../model/parse.js';
import { viewLedger } from '../store/slots.js';
import { isProcessAlive } from '../system/liveness.js';
import { measureListenQueues, type NamedAddress } from '../system/proc.js';

/** Produces the document to serve, fresh for each client. */
export type DocumentProvider = () => Promise<UwsgiDocument>;

export type { DocumentIdentity } from '../model/document.js';

/** The answering process's own row, from memory. */
export interface SelfEntry {
  worker: UwsgiWorker;
  /** Whether `worker.id` is this process's slot by the file's word (false before its first write). */
  assigned: boolean;
}

// What the answering process may refresh in its own row from memory: its state now. Never its
// counters: a shared socket is answered by any process of the app, and a reader must never see a
// counter go back from one answer to the next.
const LIVE_FIELDS = [
  'accepting',
  'status',
  'rss',
  'vsz',
  'avg_rt',
  'cores',
  'in_flight',
  'event_loop_utilization',
  'event_loop_delay',
  'heap_used',
  'method',
  'uri',
] as const;

/** How {@link createStatusFileProvider} builds the document. */
export interface StatusFileProviderOptions {
  /** The status file. A missing file reads as no workers. */
  path: string;
  /**
   * The top level. Receives the one the file holds (written by the app's
   * workers), or `null` when the file has none yet.
   */
  identity: (fromFile: DocumentIdentity | null) => DocumentIdentity | Promise<DocumentIdentity>;
  /**
   * The answering process's own row, from memory. Where the file shows it as
   * its slot's owner, its state (status, in-flight request, memory) is
   * refreshed from it; its counters stay as the file holds them. When the
   * file cannot be read, the document is this row alone.
   */
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
    let parsed: ParsedStatus = { processes: [], slots: [], problem: null };
    let fromFile: DocumentIdentity | null = null;
    let readable = true;
    // First: before its first write, the answering process writes now, so the file holds its slot.
    const self = await options.self?.();
    try {
      const text = await readFile(options.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return '';
        throw error;
      });
      parsed = parseStatus(text);
      if (parsed.problem === 'corrupt') throw new StatusFileError('EINVALIDJSON', options.path);
      if (parsed.problem === 'foreign' && parsed.processes.length === 0 && parsed.slots.length === 0) {
        throw new StatusFileError('EFOREIGN', options.path);
      }
      fromFile = readIdentity(text);
    } catch (error) {
      if (!options.onFileError) throw error;
      readable = false;
      options.onFileError(error as Error);
    }
    let { workers } = viewLedger(parsed, { now: Date.now(), staleAfterMs: options.staleAfterMs, isAlive: (pid) => isAlive(pid) });
    if (self && !readable) workers = [self.worker];
    else if (self?.assigned) {
      const index = workers.findIndex((w) => w.id === self.worker.id && w.pid === self.worker.pid);
      if (index !== -1) {
        const row: Record<string, unknown> = { ...workers[index] };
        for (const key of LIVE_FIELDS) row[key] = self.worker[key];
        workers[index] = row as unknown as UwsgiWorker;
      }
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
