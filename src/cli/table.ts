/**
 * The human view of a document, shared by `show --table` and `top`. It reads
 * documents from real uWSGI too, so every Node-only field is optional here.
 */
import { inFlightOf, type UwsgiDocument, type UwsgiWorker } from '../model/document.js';
import { columns, mebibytes } from './common.js';

/** Requests per second of each worker, keyed by {@link workerKey}; absent on the first frame. */
export type Rates = ReadonlyMap<string, number>;

/** A worker's identity across refreshes: a respawned worker is a new one. */
export function workerKey(worker: Pick<UwsgiWorker, 'id' | 'pid'>): string {
  return `${worker.id}:${worker.pid}`;
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** The summary lines above the table. */
export function summary(document: UwsgiDocument, totalRate?: number): string[] {
  const workers = document.workers ?? [];
  const counts = new Map<string, number>();
  for (const worker of workers) counts.set(worker.status, (counts.get(worker.status) ?? 0) + 1);
  const states = [...counts].map(([status, count]) => `${count} ${status}`).join(', ');
  const requests = workers.reduce((sum, worker) => sum + num(worker.requests), 0);
  const lines = [
    [
      document.version,
      `pid ${num(document.pid)}`,
      `${workers.length} worker${workers.length === 1 ? '' : 's'}${states ? ` (${states})` : ''}`,
      `${requests} requests${totalRate === undefined ? '' : ` (${totalRate.toFixed(1)}/s)`}`,
      `listen queue ${num(document.listen_queue)}`,
    ].join(' · '),
  ];
  const sockets = (document.sockets ?? []).map((s) => `${s.name} ${num(s.queue)}/${num(s.max_queue)}`);
  if (sockets.length > 0) lines.push(`sockets: ${sockets.join(', ')}`);
  return lines;
}

/** The worker table; with `rates`, a REQ/S column. */
export function workerTable(document: UwsgiDocument, rates?: Rates): string[] {
  const header = [
    'WID',
    'PID',
    'STATUS',
    'REQ',
    ...(rates ? ['REQ/S'] : []),
    'INFLT',
    'AVG_MS',
    'RSS_MB',
    'HEAP_MB',
    'EXC',
    'TX',
  ];
  const right = [true, true, false, true, ...(rates ? [true] : []), true, true, true, true, true, true, false];
  const rows = (document.workers ?? []).map((worker) => {
    const rate = rates?.get(workerKey(worker));
    return [
      String(num(worker.id)),
      String(num(worker.pid)),
      String(worker.status),
      String(num(worker.requests)),
      ...(rates ? [rate === undefined ? '-' : rate.toFixed(1)] : []),
      String(inFlightOf(worker)),
      (num(worker.avg_rt) / 1000).toFixed(1),
      mebibytes(num(worker.rss)),
      worker.heap_used === undefined ? '-' : mebibytes(num(worker.heap_used)),
      String(num(worker.exceptions)),
      String(num(worker.tx)),
      worker.method && worker.uri ? `${worker.method} ${worker.uri}` : '',
    ];
  });
  return columns([[...header, 'REQUEST'], ...rows], right);
}
