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
 */
import { measureListenQueues, type NamedAddress } from '../system/proc.js';

/** On quiet ticks, measure on every this many (5 s at the default interval). */
export const QUIET_EVERY = 5;

/** The loop figures of one interval that decide whether a queue can have formed. */
export interface LoopActivity {
  /** Event loop utilization over the interval, 0–1. */
  utilization: number;
  /** The longest event-loop delay beyond the histogram's sampling period, ms. */
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
  private quietTicks = 0;
  private readonly measure: typeof measureListenQueues;

  constructor(measure: typeof measureListenQueues = measureListenQueues) {
    this.measure = measure;
  }

  /** The queues of `addresses` for this tick: a new reading, or the last one when nothing can have changed. */
  sample(addresses: readonly NamedAddress[], loop: LoopActivity): ReadonlyMap<string, { queue: number }> {
    const key = addresses.map((address) => address.name).join('\n');
    const active =
      loop.utilization >= BUSY_UTILIZATION ||
      loop.stallMs >= STALL_MS ||
      loop.lateMs >= STALL_MS ||
      [...this.last.values()].some((measured) => measured.queue > 0);
    if (active || key !== this.lastKey || ++this.quietTicks >= QUIET_EVERY) {
      this.last = this.measure(addresses);
      this.lastKey = key;
      this.quietTicks = 0;
    }
    return this.last;
  }
}
