/**
 * Where a stats server's document comes from: the shared status file, read
 * fresh at answer time without the lock (writers rename whole files into
 * place, so a reader never sees a partial one), its rows recomputed from the
 * file's ledger as a writer would (a process that is gone shown by no row,
 * its slot `cheap` if nobody else serves in it; a stuck one `busy`), and the
 * listen queues measured from /proc at that moment, the way uWSGI's master
 * measures them when a stats client connects.
 *
 * The file is read the way the writers read it (store/safe-file.ts: no link
 * followed, no blocking on a FIFO, at most 16 MiB), and a file this library
 * did not write still gives a valid document: its workers when they have
 * uWSGI's shape (a real uWSGI's capture), else none (issue 13: the sidecar
 * answered such a file with an empty connection, which Netdata reports as
 * "unexpectedly disconnected").
 */
import { buildDocument, type DocumentIdentity, type UwsgiDocument, type UwsgiWorker } from '../model/document.js';
import { type ParsedStatus, parseStatus } from '../model/parse.js';
import { readStatusTextSync } from '../store/safe-file.js';
import { viewLedger } from '../store/slots.js';
import { PROBLEM_CODES, StatusFileError } from '../store/status-file.js';
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

export { StatusFileError, type StatusFileErrorCode } from '../store/status-file.js';

/**
 * A provider over the status file. The in-process server passes `self` (its
 * monitor's live snapshot); the `serve` sidecar and the CLI pass none.
 */
export function createStatusFileProvider(options: StatusFileProviderOptions): DocumentProvider {
  const isAlive = options.isAlive ?? isProcessAlive;
  const measure = options.measure ?? measureListenQueues;
  return async () => {
    let parsed: ParsedStatus = { processes: [], slots: [], problem: null };
    let readable = true;
    // First: before its first write, the answering process writes now, so the file holds its slot.
    const self = await options.self?.();
    try {
      const read = readStatusTextSync(options.path);
      if (read.unusable === null) parsed = parseStatus(read.text, { accept: 'uwsgi' });
      const problem = read.unusable ?? parsed.problem;
      if (problem !== null) {
        const error = new StatusFileError(PROBLEM_CODES[problem], options.path);
        if (error.unusable) readable = false;
        if (options.onFileError) options.onFileError(error);
        else if (error.unusable) throw error;
      }
    } catch (error) {
      if (!options.onFileError || error instanceof StatusFileError) throw error;
      readable = false;
      options.onFileError(error as Error);
    }
    let workers: UwsgiWorker[];
    if (!readable || (self && parsed.uwsgiWorkers !== undefined)) {
      // Nothing of the file to show (or a foreign file the answering process's writer replaces at its next tick).
      workers = self ? [self.worker] : [];
    } else if (parsed.uwsgiWorkers !== undefined) {
      // A document this library did not write: its live workers as they are. A uWSGI capture has no
      // `last_update`, so only the pid decides; id and pid 0 are a cheaped row (uwsgi_exporter drops id 0).
      workers = parsed.uwsgiWorkers.filter((w) => w.id >= 1 && w.pid > 0 && isAlive(w.pid));
    } else {
      workers = viewLedger(parsed, {
        now: Date.now(),
        staleAfterMs: options.staleAfterMs,
        isAlive: (pid) => isAlive(pid),
      }).workers;
      if (self?.assigned) {
        const index = workers.findIndex((w) => w.id === self.worker.id && w.pid === self.worker.pid);
        if (index !== -1) {
          const row: Record<string, unknown> = { ...workers[index] };
          for (const key of LIVE_FIELDS) row[key] = self.worker[key];
          workers[index] = row as unknown as UwsgiWorker;
        }
      }
    }
    const addresses: NamedAddress[] = workers.flatMap((w) => w.listen ?? []);
    const identity = await options.identity(parsed.identity ?? null);
    return buildDocument({ ...identity, queues: measure(addresses) }, workers);
  };
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
