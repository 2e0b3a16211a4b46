/**
 * The status file's ledger: the two Node-only arrays after `workers` from
 * which every writer and reader recomputes the `workers` rows (see
 * store/slots.ts, and docs/FIELDS.md "The ledger"). Readers of the uWSGI
 * document ignore them.
 */
import type { ListenAddress } from './document.js';

/**
 * Node-only, one per slot ever listed: what the slot carries from the
 * processes that served in it and are gone, so that its counters never go
 * backwards (uWSGI keeps a worker's counters in its fixed array the same way).
 * A slot's totals are these plus the own counters of every live process
 * attached to it (see {@link ProcessEntry}).
 */
export interface SlotRecord {
  id: number;
  /** The process whose row the slot shows: the newest that took it; 0 when none lives (a `cheap` row). */
  pid: number;
  /** 1 for the slot's first process, +1 each time another process takes it. */
  respawn_count: number;
  requests: number;
  exceptions: number;
  tx: number;
  running_time: number;
  /** Epoch milliseconds since when no live process is attached; 0 while one is. */
  cheap_since: number;
}

/**
 * Node-only, one per live process: what it has counted itself since it
 * started (never its slot's totals) and what its row shows. A process stays
 * attached to its slot until it exits, also while a successor owns the slot
 * (a `pm2 reload` drains the old process after the new one started).
 */
export interface ProcessEntry {
  pid: number;
  /** The slot it is attached to. */
  id: number;
  accepting: number;
  requests: number;
  exceptions: number;
  tx: number;
  running_time: number;
  in_flight: number;
  avg_rt: number;
  rss: number;
  vsz: number;
  heap_used: number;
  event_loop_utilization: number;
  event_loop_delay: number;
  /** Epoch seconds when the process started. */
  last_spawn: number;
  /** Epoch milliseconds when the process started: the newest process of a slot owns its row. */
  started_at: number;
  /** Epoch milliseconds of its last write. */
  last_update: number;
  /** Its write interval, ms: an entry silent for 1.5 intervals belongs to a stuck process. */
  interval: number;
  /** Epoch seconds when its latest in-flight request began; 0 when idle. */
  request_start: number;
  method?: string;
  uri?: string;
  listen?: ListenAddress[];
  /**
   * The accept queues of every address in the group, as this process last
   * measured them; written only while no other process's reading is newer.
   * The others reuse it instead of measuring themselves (monitor/listen-queues.ts).
   */
  listen_queues?: ListenQueueReading;
}

/** One measurement of the accept queues of the group's addresses. */
export interface ListenQueueReading {
  /** Epoch milliseconds when it was measured. */
  measured_at: number;
  /** Every address asked for, with its queue (0 where none was found). */
  sockets: Array<{ name: string; queue: number }>;
}
