import type { ListenAddress, RetiredSlot, UwsgiWorker } from './document.js';

/**
 * What was wrong with a status file that had to be repaired:
 * - `corrupt`: not JSON;
 * - `foreign`: JSON, but entries (or the whole document) this library did not write;
 * - `symlink`: a symbolic link sat at the path (never followed);
 * - `not-regular`: a FIFO, socket, device or directory sat at the path (never read);
 * - `too-large`: a regular file over the size cap (never read whole).
 */
export type StatusProblem = 'corrupt' | 'foreign' | 'symlink' | 'not-regular' | 'too-large';

/** The trustworthy part of a status file, and what was wrong with the rest. */
export interface ParsedStatus {
  workers: UwsgiWorker[];
  retired: RetiredSlot[];
  /** `null` when the file was valid (or absent/empty, which is normal before the first write). */
  problem: StatusProblem | null;
}

const WORKER_UINT_KEYS = [
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
  'in_flight',
  'last_update',
] as const;

/** The unsigned fields of a worker in uWSGI's own document (a real uWSGI's capture has no Node-only ones). */
const UWSGI_WORKER_UINT_KEYS = WORKER_UINT_KEYS.filter((key) => key !== 'in_flight' && key !== 'last_update');

const RETIRED_UINT_KEYS = ['id', 'pid', 'respawn_count', 'requests', 'exceptions', 'tx', 'running_time', 'retired_at'] as const;

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isListenAddress(value: unknown): value is ListenAddress {
  return isRecord(value) && typeof value.name === 'string' && isUint(value.port) && isUint(value.max_queue);
}

/** A worker entry written by this library, with every field of the right type. */
export function isWorkerEntry(value: unknown): value is UwsgiWorker {
  if (!isRecord(value)) return false;
  for (const key of WORKER_UINT_KEYS) if (!isUint(value[key])) return false;
  if ((value.id as number) < 1 || (value.pid as number) < 1) return false;
  if (typeof value.status !== 'string') return false;
  if (!Array.isArray(value.apps) || !Array.isArray(value.cores)) return false;
  if (value.listen !== undefined && !(Array.isArray(value.listen) && value.listen.every(isListenAddress))) return false;
  return true;
}

/**
 * A worker in uWSGI's own shape (a real uWSGI's stats, another tool's file):
 * uWSGI's fields with their types; `id` and `pid` 0 is a cheaped worker's row. What a
 * reader serves as it is; never what a writer keeps in the file it owns.
 */
export function isUwsgiWorker(value: unknown): value is UwsgiWorker {
  if (!isRecord(value)) return false;
  for (const key of UWSGI_WORKER_UINT_KEYS) if (!isUint(value[key])) return false;
  return typeof value.status === 'string' && Array.isArray(value.apps) && Array.isArray(value.cores);
}

function isRetiredSlot(value: unknown): value is RetiredSlot {
  if (!isRecord(value)) return false;
  for (const key of RETIRED_UINT_KEYS) if (!isUint(value[key])) return false;
  return (value.id as number) >= 1;
}

/** Which worker entries {@link parseStatus} keeps. */
export interface ParseOptions {
  /**
   * `'own'`: only entries exactly as this library writes them (a writer
   * rebuilding the file it owns). `'uwsgi'`: also any worker in uWSGI's shape
   * (a reader serving a file it did not write, e.g. a real uWSGI's capture);
   * such entries may lack the Node-only fields (`in_flight`, `last_update`).
   * @default 'own'
   */
  accept?: 'own' | 'uwsgi';
}

/**
 * Reads a status file's text without trusting it: entries that are not
 * exactly what this library writes (or, with `accept: 'uwsgi'`, not in
 * uWSGI's shape) are dropped, duplicate ids keep the most recently updated
 * entry, and anything unparsable counts as empty. Pure.
 */
export function parseStatus(text: string, options: ParseOptions = {}): ParsedStatus {
  const accepts = options.accept === 'uwsgi' ? (entry: unknown) => isWorkerEntry(entry) || isUwsgiWorker(entry) : isWorkerEntry;
  if (text.trim() === '') return { workers: [], retired: [], problem: null };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { workers: [], retired: [], problem: 'corrupt' };
  }
  if (!isRecord(data) || !Array.isArray(data.workers)) return { workers: [], retired: [], problem: 'foreign' };
  let problem: StatusProblem | null = null;
  const byId = new Map<number, UwsgiWorker>();
  for (const entry of data.workers) {
    if (!accepts(entry)) {
      problem = 'foreign';
      continue;
    }
    const other = byId.get(entry.id);
    if (other === undefined || other.last_update < entry.last_update) byId.set(entry.id, entry);
  }
  const retired = new Map<number, RetiredSlot>();
  if (data.retired_slots !== undefined) {
    if (!Array.isArray(data.retired_slots)) problem = 'foreign';
    else
      for (const slot of data.retired_slots) {
        if (isRetiredSlot(slot)) retired.set(slot.id, slot);
        else problem = 'foreign';
      }
  }
  return { workers: [...byId.values()], retired: [...retired.values()], problem };
}
