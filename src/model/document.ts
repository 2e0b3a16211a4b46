/**
 * The uWSGI stats document: its types, and pure functions that build it.
 *
 * Field order and JSON types follow uWSGI 2.0.21's stats server exactly
 * (see DESIGN.md and the captures in test/fixtures). Every number is a
 * non-negative integer: Telegraf and uwsgi_exporter decode into Go integer
 * types and reject the whole document on a single float or negative value.
 */

import type { ProcessEntry, SlotRecord } from './ledger.js';

/** One listening socket, as uWSGI lists it under `sockets`. */
export interface UwsgiSocket {
  /** The address, e.g. `"127.0.0.1:3000"`, `"[::]:3000"` or a unix socket path. */
  name: string;
  /** Always `"http"` for a Node server. */
  proto: string;
  /** Connections waiting in the kernel's accept queue right now. */
  queue: number;
  /** The backlog the socket was given (Node's default is 511). */
  max_queue: number;
  shared: number;
  can_offload: number;
}

/** The single app uWSGI lists per worker. */
export interface UwsgiApp {
  id: number;
  modifier1: number;
  mountpoint: string;
  startup_time: number;
  requests: number;
  exceptions: number;
  chdir: string;
}

/** The single core of a worker (a Node process runs one event loop). */
export interface UwsgiCore {
  id: number;
  requests: number;
  static_requests: number;
  routed_requests: number;
  offloaded_requests: number;
  write_errors: number;
  read_errors: number;
  /** 1 while a request is in flight. */
  in_request: number;
  vars: string[];
  req_info: { request_start?: number };
}

/** uWSGI's worker states that readers understand. */
export type UwsgiWorkerStatus = 'idle' | 'busy' | 'cheap' | 'pause' | `sig${number}`;

/** One worker (one Node process) as uWSGI lists it, plus Node-only fields after uWSGI's. */
export interface UwsgiWorker {
  id: number;
  pid: number;
  accepting: number;
  requests: number;
  delta_requests: number;
  exceptions: number;
  harakiri_count: number;
  signals: number;
  signal_queue: number;
  status: UwsgiWorkerStatus;
  rss: number;
  vsz: number;
  running_time: number;
  last_spawn: number;
  respawn_count: number;
  tx: number;
  avg_rt: number;
  apps: UwsgiApp[];
  cores: UwsgiCore[];
  // Node-only fields: readers ignore unknown keys.
  /** Requests in flight right now. */
  in_flight: number;
  /** Event-loop utilisation over the last interval, per mille. */
  event_loop_utilization: number;
  /** Mean event-loop delay over the last interval, microseconds. */
  event_loop_delay: number;
  /** V8 heap in use, bytes. */
  heap_used: number;
  /** When this entry was last written, epoch milliseconds. */
  last_update: number;
  /** Method of the latest request still in flight (only while busy). */
  method?: string;
  /** Path of the latest request still in flight, never its query string (only while busy). */
  uri?: string;
  /** Addresses this process's servers listen on (used to build the top-level `sockets`). */
  listen?: ListenAddress[];
}

/** A listening address a process has seen, with its backlog. */
export interface ListenAddress {
  name: string;
  /** TCP port, or 0 for a unix socket. */
  port: number;
  max_queue: number;
}

export type { ListenQueueReading, ProcessEntry, SlotRecord } from './ledger.js';

/** The whole stats document, in uWSGI's key order. */
export interface UwsgiDocument {
  version: string;
  listen_queue: number;
  listen_queue_errors: number;
  signal_queue: number;
  load: number;
  pid: number;
  uid: number;
  gid: number;
  cwd: string;
  locks: Array<Record<string, number>>;
  sockets: UwsgiSocket[];
  workers: UwsgiWorker[];
  /** Node-only: the ledger every writer recomputes `workers` from (see docs/FIELDS.md). */
  slots?: SlotRecord[];
  /** Node-only: the live processes' own counters (see docs/FIELDS.md). */
  processes?: ProcessEntry[];
}

/** Everything one process knows about itself at a tick: the input of {@link buildWorker}. */
export interface WorkerSnapshot {
  id: number;
  pid: number;
  accepting: boolean;
  /** Requests completed in this slot, carried over from earlier processes. */
  requests: number;
  /** Requests completed by this process. */
  deltaRequests: number;
  exceptions: number;
  inFlight: number;
  rss: number;
  vsz: number;
  heapUsed: number;
  /** Microseconds spent in completed requests (slot total). */
  runningTime: number;
  /** Epoch seconds when this process started. */
  lastSpawn: number;
  respawnCount: number;
  tx: number;
  /** Microseconds, uWSGI's halving running average. */
  avgRt: number;
  /** Epoch seconds when the latest in-flight request began, if any. */
  requestStart: number;
  eventLoopUtilization: number;
  eventLoopDelay: number;
  /** Epoch milliseconds of this snapshot. */
  now: number;
  method?: string;
  uri?: string;
  listen: ListenAddress[];
  /**
   * A status other than the one `inFlight` gives: `cheap` for a slot no
   * process serves, `busy` for a stuck process (its entry stopped updating).
   */
  status?: 'cheap' | 'busy';
}

/** A JSON number that Go's `uint64` accepts: rounded, clamped at 0, never NaN. */
export function toUint(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.min(Math.round(n), Number.MAX_SAFE_INTEGER);
}

/** Builds one worker entry from a snapshot. Pure. */
export function buildWorker(s: WorkerSnapshot): UwsgiWorker {
  const busy = s.status === 'busy' || (s.status === undefined && s.inFlight > 0);
  const requests = toUint(s.requests);
  const exceptions = toUint(s.exceptions);
  const worker: UwsgiWorker = {
    id: Math.max(1, toUint(s.id)),
    pid: toUint(s.pid),
    accepting: s.accepting ? 1 : 0,
    requests,
    delta_requests: toUint(s.deltaRequests),
    exceptions,
    harakiri_count: 0,
    signals: 0,
    signal_queue: 0,
    status: s.status === 'cheap' ? 'cheap' : busy ? 'busy' : 'idle',
    rss: toUint(s.rss),
    vsz: toUint(s.vsz),
    running_time: toUint(s.runningTime),
    last_spawn: toUint(s.lastSpawn),
    respawn_count: Math.max(1, toUint(s.respawnCount)),
    tx: toUint(s.tx),
    avg_rt: toUint(s.avgRt),
    apps: [
      {
        id: 0,
        modifier1: 0,
        mountpoint: '',
        startup_time: 0,
        requests,
        exceptions,
        chdir: '',
      },
    ],
    cores: [
      {
        id: 0,
        requests,
        static_requests: 0,
        routed_requests: 0,
        offloaded_requests: 0,
        write_errors: 0,
        read_errors: 0,
        in_request: busy ? 1 : 0,
        vars: [],
        req_info: busy && s.requestStart > 0 ? { request_start: toUint(s.requestStart) } : {},
      },
    ],
    in_flight: toUint(s.inFlight),
    event_loop_utilization: toUint(s.eventLoopUtilization),
    event_loop_delay: toUint(s.eventLoopDelay),
    heap_used: toUint(s.heapUsed),
    last_update: toUint(s.now),
  };
  if (busy && s.method !== undefined) worker.method = s.method;
  if (busy && s.uri !== undefined) worker.uri = s.uri;
  worker.listen = s.listen.map((l) => ({ name: l.name, port: toUint(l.port), max_queue: toUint(l.max_queue) }));
  return worker;
}

/** The top-level fields that describe the app rather than its workers. */
export interface DocumentIdentity {
  version: string;
  /** The supervising process (cluster primary, PM2), else the process itself. */
  pid: number;
  uid: number;
  gid: number;
  cwd: string;
}

/** The top-level fields of the document other than `workers`. */
export interface DocumentHeader extends DocumentIdentity {
  /** Accept-queue length per socket name, measured by whoever builds the document. */
  queues: ReadonlyMap<string, { queue: number }>;
}

/**
 * Builds the whole document from live workers. Pure. `sockets` is the union
 * of the addresses the workers listen on; `listen_queue` and `load` are their
 * summed accept queues, as uWSGI's master reports them.
 */
export function buildDocument(
  header: DocumentHeader,
  workers: UwsgiWorker[],
  ledger?: { slots: SlotRecord[]; processes: ProcessEntry[] },
): UwsgiDocument {
  const sockets: UwsgiSocket[] = [];
  const seen = new Set<string>();
  let listenQueue = 0;
  const sorted = [...workers].sort((a, b) => a.id - b.id);
  for (const worker of sorted) {
    for (const address of worker.listen ?? []) {
      if (seen.has(address.name)) continue;
      seen.add(address.name);
      const measured = header.queues.get(address.name);
      const queue = toUint(measured?.queue);
      listenQueue += queue;
      sockets.push({
        name: address.name,
        proto: 'http',
        queue,
        max_queue: toUint(address.max_queue),
        shared: 0,
        can_offload: 0,
      });
    }
  }
  const document: UwsgiDocument = {
    version: header.version,
    listen_queue: listenQueue,
    listen_queue_errors: 0,
    signal_queue: 0,
    load: listenQueue,
    pid: toUint(header.pid),
    uid: toUint(header.uid),
    gid: toUint(header.gid),
    cwd: header.cwd,
    locks: [],
    sockets,
    workers: sorted,
  };
  if (ledger) {
    document.slots = [...ledger.slots].sort((a, b) => a.id - b.id);
    document.processes = [...ledger.processes].sort((a, b) => a.id - b.id || a.started_at - b.started_at);
  }
  return document;
}

/** A worker's requests in flight: our `in_flight`, or, in uWSGI's own documents, its busy cores. */
export function inFlightOf(worker: UwsgiWorker): number {
  if (typeof worker.in_flight === 'number') return toUint(worker.in_flight);
  return (worker.cores ?? []).reduce((sum, core) => sum + toUint(core.in_request), 0);
}
