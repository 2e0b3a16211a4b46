import type { DocumentIdentity, ListenAddress, ListenQueueReading, ProcessEntry, SlotRecord, UwsgiWorker } from './document.js';

/**
 * What was wrong with a status file that had to be repaired:
 * - `corrupt`: not JSON;
 * - `foreign`: JSON, but entries (or the whole document) this library did not write;
 * - `symlink`: a symbolic link sat at the path (never followed);
 * - `not-regular`: a FIFO, socket, device or directory sat at the path (never read);
 * - `too-large`: a regular file over the size cap (never read whole).
 */
export type StatusProblem = 'corrupt' | 'foreign' | 'symlink' | 'not-regular' | 'too-large';

/**
 * The trustworthy part of a status file: its ledger (the `workers` rows are
 * recomputed from it by every writer and reader), and what was wrong with the rest.
 */
export interface ParsedStatus {
  /** Live (or not yet pruned) processes, with their own counters. */
  processes: ProcessEntry[];
  /** Every slot's carried counters and respawn count. */
  slots: SlotRecord[];
  /** `null` when the file was valid (or absent/empty, which is normal before the first write). */
  problem: StatusProblem | null;
  /** The top level as the app's processes wrote it, when well typed (readers serve it as the app's). */
  identity?: DocumentIdentity;
  /**
   * With `accept: 'uwsgi'`, the workers of a document that has no ledger but
   * uWSGI's shape (a real uWSGI's stats, another tool's file): what a reader
   * serves as it is; never what a writer keeps in the file it owns.
   */
  uwsgiWorkers?: UwsgiWorker[];
}

/** What {@link parseStatus} keeps beyond the ledger. */
export interface ParseOptions {
  /**
   * `'own'`: only the ledger this library writes (a writer rebuilding the file
   * it owns). `'uwsgi'`: also the `workers` of a document in uWSGI's shape
   * without a ledger, in `uwsgiWorkers` (a reader serving a file it did not write).
   * @default 'own'
   */
  accept?: 'own' | 'uwsgi';
}

const PROCESS_UINT_KEYS = [
  'pid',
  'id',
  'accepting',
  'requests',
  'exceptions',
  'tx',
  'running_time',
  'in_flight',
  'avg_rt',
  'rss',
  'vsz',
  'heap_used',
  'event_loop_utilization',
  'event_loop_delay',
  'last_spawn',
  'started_at',
  'last_update',
  'interval',
  'request_start',
] as const;

const SLOT_UINT_KEYS = ['id', 'pid', 'respawn_count', 'requests', 'exceptions', 'tx', 'running_time', 'cheap_since'] as const;

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isListenAddress(value: unknown): value is ListenAddress {
  return isRecord(value) && typeof value.name === 'string' && isUint(value.port) && isUint(value.max_queue);
}

function isListenQueueReading(value: unknown): value is ListenQueueReading {
  return (
    isRecord(value) &&
    isUint(value.measured_at) &&
    Array.isArray(value.sockets) &&
    value.sockets.every((socket) => isRecord(socket) && typeof socket.name === 'string' && isUint(socket.queue))
  );
}

const optionalString = (value: unknown) => value === undefined || typeof value === 'string';

/** A process entry written by this library, with every field of the right type. */
export function isProcessEntry(value: unknown): value is ProcessEntry {
  if (!isRecord(value)) return false;
  for (const key of PROCESS_UINT_KEYS) if (!isUint(value[key])) return false;
  if ((value.id as number) < 1 || (value.pid as number) < 1) return false;
  if (!optionalString(value.method) || !optionalString(value.uri)) return false;
  if (value.listen !== undefined && !(Array.isArray(value.listen) && value.listen.every(isListenAddress))) return false;
  if (value.listen_queues !== undefined && !isListenQueueReading(value.listen_queues)) return false;
  return true;
}

// A worker in uWSGI's own document: its unsigned fields (a real uWSGI has no Node-only ones).
const UWSGI_WORKER_UINT_KEYS = [
  'id',
  'pid',
  'accepting',
  'requests',
  'delta_requests',
  'exceptions',
  'harakiri_count',
  'signals',
  'signal_queue',
  'rss',
  'vsz',
  'running_time',
  'last_spawn',
  'respawn_count',
  'tx',
  'avg_rt',
] as const;

/** A worker in uWSGI's shape: uWSGI's fields with their types (`id` and `pid` 0 is a cheaped worker's row). */
export function isUwsgiWorker(value: unknown): value is UwsgiWorker {
  if (!isRecord(value)) return false;
  for (const key of UWSGI_WORKER_UINT_KEYS) if (!isUint(value[key])) return false;
  return typeof value.status === 'string' && Array.isArray(value.apps) && Array.isArray(value.cores);
}

/** The app's identity as its processes wrote it, if the document holds a well-typed one. */
function identityOf(data: Record<string, unknown>): DocumentIdentity | undefined {
  const { version, pid, uid, gid, cwd } = data;
  if (typeof version !== 'string' || typeof cwd !== 'string' || !isUint(pid) || !isUint(uid) || !isUint(gid)) return undefined;
  return { version, pid, uid, gid, cwd };
}

function isSlotRecord(value: unknown): value is SlotRecord {
  if (!isRecord(value)) return false;
  for (const key of SLOT_UINT_KEYS) if (!isUint(value[key])) return false;
  return (value.id as number) >= 1;
}

/**
 * Reads a status file's text without trusting it: ledger entries that are
 * not exactly what this library writes are dropped, a pid listed twice keeps
 * its most recently updated entry, an id listed twice in `slots` its first,
 * and anything unparsable counts as empty. A document with `workers` but no
 * ledger (a real uWSGI's, another tool's) is foreign; with `accept: 'uwsgi'`
 * its workers in uWSGI's shape are kept apart, in `uwsgiWorkers`. Pure.
 */
export function parseStatus(text: string, options: ParseOptions = {}): ParsedStatus {
  const empty = (problem: StatusProblem | null): ParsedStatus => ({ processes: [], slots: [], problem });
  if (text.trim() === '') return empty(null);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return empty('corrupt');
  }
  if (!isRecord(data) || !Array.isArray(data.workers)) return empty('foreign');
  const identity = identityOf(data);
  const withIdentity = (parsed: ParsedStatus): ParsedStatus => (identity === undefined ? parsed : { ...parsed, identity });
  if (data.processes === undefined && data.slots === undefined) {
    if (data.workers.length === 0) return withIdentity(empty(null));
    if (options.accept !== 'uwsgi') return withIdentity(empty('foreign'));
    // A reader serving uWSGI's own document: a problem only where rows are not in uWSGI's shape.
    const uwsgiWorkers = data.workers.filter(isUwsgiWorker);
    return { ...withIdentity(empty(uwsgiWorkers.length === data.workers.length ? null : 'foreign')), uwsgiWorkers };
  }
  if (!Array.isArray(data.processes) || !Array.isArray(data.slots)) return empty('foreign');
  let problem: StatusProblem | null = null;
  const byPid = new Map<number, ProcessEntry>();
  for (const entry of data.processes) {
    if (!isProcessEntry(entry)) {
      problem = 'foreign';
      continue;
    }
    const other = byPid.get(entry.pid);
    if (other === undefined || other.last_update < entry.last_update) byPid.set(entry.pid, entry);
  }
  const slots = new Map<number, SlotRecord>();
  for (const slot of data.slots) {
    if (!isSlotRecord(slot)) problem = 'foreign';
    else if (!slots.has(slot.id)) slots.set(slot.id, slot);
  }
  return withIdentity({ processes: [...byPid.values()], slots: [...slots.values()], problem });
}
