/**
 * The accept queues a tick writes: measured when they can have changed,
 * carried over from the last reading when they cannot.
 *
 * Reading /proc/net/tcp costs the kernel more than its LISTEN rows: after the
 * last row a read returns, it looks for the next one through its whole table
 * of established connections (262,144 buckets on a 24 GiB machine). With few
 * connections that walk is about 1 ms of CPU; with 50 or more, 0.07 ms. So an
 * idle app paid three quarters of its tick for a reading that was 0.
 *
 * A queue forms only while connections come faster than an event loop accepts
 * them, and a Node server accepts every pending connection each time its loop
 * polls. So a tick measures when its interval gave a queue a chance: the loop
 * was busy (half its time or more), stalled (a delay beyond the sampling
 * period, or this tick itself came late: after a blocked loop the timers run
 * before the poll that accepts), the last reading was not 0, or the addresses
 * changed. Otherwise it measures every {@link QUIET_EVERY}th tick, for an
 * acceptor this process cannot see (a cluster primary, another process on
 * the same port). The stats server and the CLI measure at every read.
 *
 * The processes sharing a file share those quiet readings: each writes its
 * latest into its ledger entry while no other is newer, and a process whose
 * quiet reading is due takes one measured since its own last instead of
 * measuring. So a quiet group of eight measures about once per
 * {@link QUIET_EVERY} ticks, not eight times.
 */
import type { ListenQueueReading } from '../model/ledger.js';
import { measureListenQueues, type NamedAddress } from '../system/proc.js';

/** On quiet ticks, measure on every this many (5 s at the default interval). */
export const QUIET_EVERY = 5;

/** The loop figures of one interval that decide whether a queue can have formed. */
export interface LoopActivity {
  /** Event loop utilization over the interval, 0–1. */
  utilization: number;
  /** The longest event-loop delay beyond its sampling period, ms (loop-delay.ts). */
  stallMs: number;
  /** How late this tick's timer fired, ms (0 for a tick called directly). */
  lateMs: number;
}

/** Utilization at or above this is a busy loop. */
const BUSY_UTILIZATION = 0.5;
/** A stall or lateness at or above this (ms) is a loop that did not poll. */
const STALL_MS = 10;

export class ListenQueueSampler {
  private last: ReturnType<typeof measureListenQueues> = new Map();
  private lastKey: string | null = null;
  /** When the reading in `last` was measured (by this process or another), epoch ms. */
  private lastAt = 0;
  private quietTicks = 0;
  private own: ListenQueueReading | null = null;
  private readonly measure: typeof measureListenQueues;

  constructor(measure: typeof measureListenQueues = measureListenQueues) {
    this.measure = measure;
  }

  /**
   * This process's latest measurement, for its ledger entry: `null` when it
   * has none or another process's (in `others`) is newer.
   */
  reading(others: readonly ListenQueueReading[] = []): ListenQueueReading | null {
    const own = this.own;
    return own !== null && others.every((other) => other.measured_at <= own.measured_at) ? own : null;
  }

  /**
   * The queues of `addresses` for this tick: a new reading, one of `others`
   * (the other processes' latest) when this process's quiet reading is due,
   * or the last one when nothing can have changed.
   */
  sample(
    addresses: readonly NamedAddress[],
    loop: LoopActivity,
    others: readonly ListenQueueReading[] = [],
    now = Date.now(),
  ): ReadonlyMap<string, { queue: number }> {
    const names = [...new Set(addresses.map((address) => address.name))];
    const key = names.join('\n');
    const active =
      loop.utilization >= BUSY_UTILIZATION ||
      loop.stallMs >= STALL_MS ||
      loop.lateMs >= STALL_MS ||
      [...this.last.values()].some((measured) => measured.queue > 0);
    if (!active && key === this.lastKey && ++this.quietTicks < QUIET_EVERY) return this.last;
    this.quietTicks = 0;
    const shared = active || key !== this.lastKey ? undefined : newestCovering(others, names, this.lastAt);
    if (shared !== undefined) {
      this.last = new Map(shared.sockets.map(({ name, queue }) => [name, { queue }]));
      this.lastAt = shared.measured_at;
    } else {
      this.last = this.measure(addresses);
      this.lastAt = now;
      this.own = {
        measured_at: now,
        sockets: names.map((name) => ({ name, queue: this.last.get(name)?.queue ?? 0 })),
      };
    }
    this.lastKey = key;
    return this.last;
  }
}

/** The newest of `readings` measured after `since` that covers every one of `names`. */
function newestCovering(
  readings: readonly ListenQueueReading[],
  names: readonly string[],
  since: number,
): ListenQueueReading | undefined {
  let newest: ListenQueueReading | undefined;
  for (const reading of readings) {
    if (reading.measured_at <= since || (newest !== undefined && reading.measured_at <= newest.measured_at)) continue;
    const measured = new Set(reading.sockets.map((socket) => socket.name));
    if (names.every((name) => measured.has(name))) newest = reading;
  }
  return newest;
}
