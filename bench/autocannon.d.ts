/**
 * The part of autocannon 9 the benchmarks use (it ships no types, and
 * @types/autocannon lags its releases): one closed-loop run, its callback.
 */
declare module 'autocannon' {
  interface Options {
    url: string;
    connections?: number;
    pipelining?: number;
    /** Seconds. */
    duration?: number;
    /** Requests in all; overrides `duration`. */
    amount?: number;
  }
  interface Histogram {
    p99: number;
  }
  interface Result {
    requests: { total: number };
    latency: Histogram;
    errors: number;
    non2xx: number;
  }
  function autocannon(options: Options, callback: (error: Error | null, result: Result) => void): unknown;
  export default autocannon;
}
