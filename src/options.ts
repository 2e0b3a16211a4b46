/**
 * The options every adapter takes, validated once when the middleware is
 * created: a bad value throws there, with the option's name, and never on
 * the request path.
 */
import { isAbsolute, resolve } from 'node:path';
import { describeValue, parseStatsAddress, type StatsAddress } from './server/address.js';

/** Options shared by every adapter. */
export interface WsgiStatusOptions {
  /**
   * How often this process writes its slot of the status file, in milliseconds.
   * @default 1000
   */
  interval?: number;
  /**
   * File mode of the status file.
   * @default 0o644
   */
  mode?: number;
  /**
   * Called once per episode of a background failure (an unwritable path, a
   * corrupt file that was repaired, a busy lock...): when it starts, and again
   * only if it comes back after it cleared. Without it, failures go to the
   * monitor's `'error'` event if it has a listener, else to one process warning.
   * Nothing the status machinery does ever throws into a request or crashes the app.
   */
  onError?: (error: Error) => void;
  /**
   * A process entry not refreshed for this long (milliseconds) is pruned even
   * if a process with its pid exists (a pid reused, or a process in another
   * PID namespace); processes whose pid is gone are pruned at once. A pruned
   * process's last written counts stay in its slot. A file with no live
   * process for max(2 × staleAfter, 60 s) is started afresh.
   * @default max(10 × interval, 10000)
   */
  staleAfter?: number;
  /**
   * The worker slot (uWSGI's `id`, >= 1) this process takes.
   * @default `NODE_APP_INSTANCE + 1` under PM2, else the lowest free slot
   */
  workerId?: number;
  /**
   * Record the method and path (never the query string) of the latest request
   * in flight, shown as `method` and `uri` of a busy worker.
   * @default true
   */
  recordRequest?: boolean;
  /**
   * Serve the document like uWSGI's `--stats`: a unix socket path, or
   * `host:port` / `:port` / `[v6]:port` for TCP (`:port` listens on every
   * interface, as in uWSGI; the document shows paths and pids, so prefer
   * `127.0.0.1`). In a node:cluster every worker listens on the same address
   * and node:cluster shares one socket; whichever worker answers serves the
   * merged document. Independent processes of one app (PM2 fork mode) may
   * all be given the same address: one serves it, the others try again every
   * interval and take it over within one interval when it stops. Listen
   * failures go to `onError` once per episode; the app keeps serving.
   * @default undefined (no stats server)
   * @example
   * app.use(wsgiStatus('/dev/shm/app-status.json', { stats: '/run/app/stats.sock' }));
   */
  stats?: string;
  /**
   * Answer HTTP on the `stats` address instead of the raw document (uWSGI's `--stats-http`).
   * `true` without `stats` is a TypeError.
   * @default false
   */
  statsHttp?: boolean;
  /**
   * File mode of the `stats` unix socket. Given without `stats`, a TypeError.
   * @default 0o660
   */
  statsMode?: number;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  path: string;
  interval: number;
  mode: number;
  onError: ((error: Error) => void) | undefined;
  staleAfter: number;
  workerId: number | null;
  recordRequest: boolean;
  stats: StatsAddress | null;
  statsHttp: boolean;
  statsMode: number;
}

/** Every option's name. */
export const OPTION_NAMES: readonly (keyof WsgiStatusOptions)[] = [
  'interval',
  'mode',
  'onError',
  'staleAfter',
  'workerId',
  'recordRequest',
  'stats',
  'statsHttp',
  'statsMode',
];
const KNOWN: ReadonlySet<string> = new Set(OPTION_NAMES);

function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`wsgi-status: option "${name}" must be an integer, got ${describeValue(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`wsgi-status: option "${name}" must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** The status file's path, made absolute against the current directory. */
export function resolveStatusPath(path: unknown, name = 'path'): string {
  if (typeof path !== 'string' || path.trim() === '') {
    throw new TypeError(`wsgi-status: option "${name}" must be a non-empty file path string, got ${describeValue(path)}`);
  }
  if (path.includes('\0')) throw new TypeError(`wsgi-status: option "${name}" must not contain a NUL byte`);
  if (path.endsWith('/')) throw new TypeError(`wsgi-status: option "${name}" must name a file, not a directory: ${path}`);
  return isAbsolute(path) ? path : resolve(path);
}

/** Validates options and fills in defaults. */
export function resolveOptions(path: unknown, options: unknown = {}): ResolvedOptions {
  const file = resolveStatusPath(path);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`wsgi-status: options must be an object, got ${describeValue(options)}`);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!KNOWN.has(key)) throw new TypeError(`wsgi-status: unknown option "${key}"`);
  }
  const interval = given.interval === undefined ? 1000 : integerIn('interval', given.interval, 10, 3_600_000);
  const mode = given.mode === undefined ? 0o644 : integerIn('mode', given.mode, 0, 0o777);
  if (given.onError !== undefined && typeof given.onError !== 'function') {
    throw new TypeError(`wsgi-status: option "onError" must be a function, got ${describeValue(given.onError)}`);
  }
  const staleAfter =
    given.staleAfter === undefined
      ? Math.max(10 * interval, 10_000)
      : integerIn('staleAfter', given.staleAfter, 2 * interval, 86_400_000);
  const workerId = given.workerId === undefined ? null : integerIn('workerId', given.workerId, 1, 65_535);
  if (given.recordRequest !== undefined && typeof given.recordRequest !== 'boolean') {
    throw new TypeError(`wsgi-status: option "recordRequest" must be a boolean, got ${describeValue(given.recordRequest)}`);
  }
  const stats = given.stats === undefined ? null : parseStatsAddress(given.stats, 'stats');
  if (given.statsHttp !== undefined && typeof given.statsHttp !== 'boolean') {
    throw new TypeError(`wsgi-status: option "statsHttp" must be a boolean, got ${describeValue(given.statsHttp)}`);
  }
  const statsMode = given.statsMode === undefined ? 0o660 : integerIn('statsMode', given.statsMode, 0, 0o777);
  // Without a stats server they would silently do nothing (issue 13). `statsHttp: false`
  // asks for nothing, so it stays valid (apps pass `statsHttp: env === '1'`).
  for (const name of ['statsHttp', 'statsMode'] as const) {
    if (stats === null && given[name] !== undefined && given[name] !== false) {
      throw new TypeError(`wsgi-status: option "${name}" needs the "stats" option (the stats server's address)`);
    }
  }
  return {
    path: file,
    interval,
    mode,
    onError: given.onError as ((error: Error) => void) | undefined,
    staleAfter,
    workerId,
    recordRequest: given.recordRequest ?? true,
    stats,
    statsHttp: given.statsHttp ?? false,
    statsMode,
  };
}
