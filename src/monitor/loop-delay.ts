/**
 * The event loop's delay over one interval, sampled by a timer: each firing
 * notes how long after the previous one it came. An idle loop reads as the
 * period itself, so the delay is what lies beyond it (as
 * @fastify/under-pressure does).
 *
 * Node's `monitorEventLoopDelay()` keeps the same gaps in an HDR histogram,
 * but its `mean` walks the whole histogram and its `reset()` clears it: after
 * a second's pause, 110–200 µs and 75–110 µs of CPU, a tenth of a tick. A tick
 * needs only the mean and the longest gap, so a sum, a count and a maximum do.
 *
 * Each sample wakes the loop, and an idle process pays 65–70 µs of CPU for
 * each wakeup of that histogram's timer, 115–150 for a JavaScript timer's (ten
 * a second: more than a third of what the tick costs). But an idle loop has no
 * delay to find: a timer fires late only while the loop is busy. So the slot
 * writer samples only while the loop was active in the interval before
 * ({@link LoopDelaySampler.setActive}).
 */
import { now } from '../model/clock.js';

export class LoopDelaySampler {
  /** The sampling period, ms. */
  readonly periodMs: number;
  private timer: NodeJS.Timeout | null = null;
  /** When the timer last fired (clock.ts's timeline, ms). */
  private previous = 0;
  private sum = 0;
  private count = 0;
  private longest = 0;

  constructor(periodMs: number) {
    this.periodMs = periodMs;
  }

  /** Starts sampling; the timer never keeps the process alive. */
  start(): void {
    if (this.timer !== null) return;
    this.previous = now();
    this.timer = setInterval(() => this.sample(), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Samples while `active`, stops otherwise. */
  setActive(active: boolean): void {
    if (active) this.start();
    else this.stop();
  }

  /** Samples taken since the last reset. */
  get samples(): number {
    return this.count;
  }

  /** The mean delay beyond the period since the last reset, ms; 0 before the first sample. */
  get meanMs(): number {
    return this.count > 0 ? Math.max(0, this.sum / this.count - this.periodMs) : 0;
  }

  /** The longest delay beyond the period since the last reset, ms; 0 before the first sample. */
  get longestMs(): number {
    return this.count > 0 ? Math.max(0, this.longest - this.periodMs) : 0;
  }

  /** Starts a new interval. The next gap still counts from the last firing. */
  reset(): void {
    this.sum = 0;
    this.count = 0;
    this.longest = 0;
  }

  private sample(): void {
    const at = now();
    const gap = at - this.previous;
    this.previous = at;
    this.sum += gap;
    this.count++;
    if (gap > this.longest) this.longest = gap;
  }
}
