/**
 * What one process counts about its requests, in memory only.
 *
 * The request path calls {@link RequestTracker.begin} and
 * {@link RequestTracker.end}: a few integer operations on one object, no
 * allocation, no I/O, nothing that can throw. The tick reads the fields.
 */
export class RequestTracker {
  /** Requests begun and not yet ended. */
  inFlight = 0;
  /** Requests completed by this process. */
  requests = 0;
  /** Requests that threw, rejected or ended with a 5xx status. */
  exceptions = 0;
  /** Bytes written for responses (headers and body), as of the last tick or snapshot: counted per connection (see TxLedger). */
  tx = 0;
  /** Microseconds spent in completed requests. */
  runningTime = 0;
  /** uWSGI's running average: after each request `avg = (avg + rt) / 2`, microseconds. */
  avgRt = 0;
  /** When the most recent request began, on `performance.now()`'s timeline (see clock.ts). */
  lastBeginAt = 0;

  /** A request began. */
  begin(now: number): void {
    this.inFlight++;
    this.lastBeginAt = now;
  }

  /**
   * A request ended. `elapsedMs` from a monotonic clock, `failed` when its
   * handler threw or it ended with a 5xx status.
   */
  end(elapsedMs: number, failed: boolean): void {
    if (this.inFlight > 0) this.inFlight--;
    this.requests++;
    if (failed) this.exceptions++;
    const rt = elapsedMs > 0 ? Math.round(elapsedMs * 1000) : 0;
    this.runningTime += rt;
    // uWSGI: avg_response_time = (avg_response_time + rt) / 2, in uint64 arithmetic.
    this.avgRt = Math.floor((this.avgRt + rt) / 2);
  }
}
