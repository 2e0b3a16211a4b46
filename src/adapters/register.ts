/**
 * `wsgi-status/register`: every request of every `http`/`https` server in the
 * process, counted with no code. Load it before the app:
 *
 *     node --import wsgi-status/register app.js
 *     node --require wsgi-status/register app.js
 *     NODE_OPTIONS="--import wsgi-status/register" (PM2 node_args, systemd, Docker)
 *
 * Node publishes `http.server.request.start` ({ request, response, socket,
 * server }) on diagnostics_channel for every node:http/https request, before
 * the server's `'request'` listeners run; the request then ends with its
 * response's own `'close'`, as with every adapter (`http.server.response.finish`
 * misses aborted responses). Node 20 publishes nothing for http2: use
 * `instrument()` there.
 *
 * Nothing is created until an HTTP server listens (`tracing:net.server.listen:asyncEnd`,
 * published in the process whose server listens, cluster workers included): a
 * process that never serves HTTP — a cluster primary, whose round-robin
 * listener is a plain net.Server, a build step or CLI inheriting NODE_OPTIONS —
 * takes no slot and writes no file. Should a server's listen go unpublished,
 * its first request creates the monitor.
 *
 * Configuration comes from the environment, read once here: a bad value is one
 * line on stderr and is left out; nothing here ever throws into the app.
 */
import dc from 'node:diagnostics_channel';
import { lstatSync, mkdirSync } from 'node:fs';
import { Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import type { RequestLike, ResponseLike, WsgiStatusMonitor } from '../monitor.js';
import { resolveOptions, resolveStatusPath, type WsgiStatusOptions } from '../options.js';
import { acquireMonitor, type MonitorHold } from './shared.js';

/** What the environment asks for. */
export interface RegisterConfig {
  /** The status file; `null` when the register is off (a bad `WSGI_STATUS_FILE`). */
  path: string | null;
  /** Whether `path` is the default one (`WSGI_STATUS_FILE` unset). */
  isDefaultPath: boolean;
  /** Options taken from the environment. */
  options: WsgiStatusOptions;
  /** One line per bad variable. */
  problems: string[];
}

const PREFIX = 'wsgi-status/register:';
const ONCE = Symbol.for('wsgi-status.register');

/** 32-bit FNV-1a, hex: enough to tell apps apart in a file name, and needs no node:crypto. */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/**
 * The status file when `WSGI_STATUS_FILE` is unset: one per user and app, on
 * tmpfs where there is one, in a directory private to the user.
 * `/dev/shm/wsgi-status-<uid>/<script>-<hash of cwd and script>.json`; the
 * script is PM2's `pm_exec_path`, else `process.argv[1]`, so a cluster's or a
 * PM2 app's workers, which share both, share one file.
 */
export function defaultStatusPath(env: NodeJS.ProcessEnv = process.env): string {
  let base = tmpdir();
  try {
    if (lstatSync('/dev/shm').isDirectory()) base = '/dev/shm';
  } catch {
    // No /dev/shm (macOS, Windows): the temporary directory.
  }
  const script = env.pm_exec_path ?? process.argv[1] ?? '';
  const cwd = process.cwd();
  const name = (basename(script, extname(script)) || basename(cwd) || 'app').replace(/[^\w.-]/g, '_').slice(0, 40);
  return join(base, `wsgi-status-${process.getuid?.() ?? 0}`, `${name}-${shortHash(`${cwd}\0${script}`)}.json`);
}

/** The error's message without the library's own prefix. */
function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/^wsgi-status: /, '');
}

/** Reads `WSGI_STATUS_FILE`, `WSGI_STATUS_STATS`, `WSGI_STATUS_STATS_HTTP` and `WSGI_STATUS_INTERVAL`. Never throws. */
export function readRegisterConfig(env: NodeJS.ProcessEnv = process.env): RegisterConfig {
  const problems: string[] = [];
  const options: WsgiStatusOptions = {};
  const file = env.WSGI_STATUS_FILE;
  const isDefaultPath = file === undefined || file === '';
  let path: string | null = null;
  try {
    path = isDefaultPath ? defaultStatusPath(env) : resolveStatusPath(file, 'WSGI_STATUS_FILE');
  } catch (error) {
    problems.push(
      `${PREFIX} WSGI_STATUS_FILE=${JSON.stringify(file)} is not usable (${reason(error)}); requests are not counted`,
    );
  }
  // Each value is checked by the same validation as the adapters' options.
  const take = <K extends keyof WsgiStatusOptions>(name: string, key: K, value: WsgiStatusOptions[K], fallback: string) => {
    try {
      resolveOptions(path ?? '/', { [key]: value });
      options[key] = value;
    } catch (error) {
      problems.push(`${PREFIX} ignoring ${name}=${JSON.stringify(env[name])} (${reason(error)}); ${fallback}`);
    }
  };
  const interval = env.WSGI_STATUS_INTERVAL;
  if (interval !== undefined && interval !== '') {
    take('WSGI_STATUS_INTERVAL', 'interval', /^\d+$/.test(interval.trim()) ? Number(interval) : Number.NaN, 'using 1000 ms');
  }
  const stats = env.WSGI_STATUS_STATS;
  if (stats !== undefined && stats !== '') take('WSGI_STATUS_STATS', 'stats', stats, 'no stats server');
  const statsHttp = env.WSGI_STATUS_STATS_HTTP;
  if (statsHttp !== undefined && statsHttp !== '') {
    const flag = /^(1|true|yes)$/i.test(statsHttp) ? true : /^(0|false|no)$/i.test(statsHttp) ? false : undefined;
    if (flag === undefined) {
      problems.push(`${PREFIX} ignoring WSGI_STATUS_STATS_HTTP=${JSON.stringify(statsHttp)} (must be 1 or 0); using 0`);
    } else options.statsHttp = flag;
  }
  return { path, isDefaultPath, options, problems };
}

/** One line on stderr; a closed stderr must not take the app down. */
function say(line: string): void {
  try {
    process.stderr.write(`${line}\n`);
  } catch {
    // Nowhere left to say it.
  }
}

/**
 * The default file's directory: made private (0700) if missing, and used only
 * if it is a real directory of ours that no one else can write (another local
 * user could have made it first, or planted a link, in a shared /tmp).
 */
function privateDirectory(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o022) !== 0) {
    throw new Error(`${dir} is not a directory private to this user; set WSGI_STATUS_FILE`);
  }
}

/** An http.Server or https.Server: not a plain net.Server (a cluster primary's, the stats server), not tls alone. */
function isHttpServer(server: unknown): boolean {
  if (server instanceof HttpServer) return true;
  // https.Server is a tls.Server, not an http.Server; node:https is only loaded for a TLS server.
  if (typeof (server as { setSecureContext?: unknown } | null)?.setSecureContext !== 'function') return false;
  return server instanceof process.getBuiltinModule('node:https').Server;
}

function start(config: RegisterConfig): void {
  for (const problem of config.problems) say(problem);
  const path = config.path;
  if (path === null) return;
  const explicit = Object.keys(config.options);
  let hold: MonitorHold | null = null;
  let off = false;
  let monitor: WsgiStatusMonitor | null = null;

  /** The monitor, created on first use (a server listening, else a first request). */
  const open = (): WsgiStatusMonitor | null => {
    if (monitor !== null || off) return monitor;
    try {
      if (config.isDefaultPath) privateDirectory(dirname(path));
      hold = acquireMonitor(path, { ...config.options, onError: (error) => say(`${PREFIX} ${reason(error)}`) }, (joined) => {
        // The app's own adapter made the monitor first: the environment's explicit settings that differ are not used.
        const unused = joined.ignored.filter((key) => explicit.includes(key));
        if (unused.length > 0) {
          say(
            `${PREFIX} ${path} is already monitored by the app's own adapter; its options stay (${unused.join(', ')} from the environment not applied)`,
          );
        }
      });
      monitor = hold.monitor;
    } catch (error) {
      off = true;
      say(`${PREFIX} requests are not counted: ${reason(error)}`);
    }
    return monitor;
  };

  dc.subscribe('tracing:net.server.listen:asyncEnd', (message) => {
    const server = (message as { server?: unknown }).server;
    if (isHttpServer(server)) open()?.observeServer(server);
  });
  // The hot path: one property read each for the request and response, then the monitor's begin().
  dc.subscribe('http.server.request.start', (message) => {
    const { request, response } = message as { request: RequestLike; response: ResponseLike };
    (monitor ?? open())?.begin(request, response);
  });
}

// Loaded twice (NODE_OPTIONS and node_args both, or two copies of the library): subscribe once.
const global = globalThis as typeof globalThis & { [ONCE]?: true };
if (global[ONCE] === undefined) {
  global[ONCE] = true;
  try {
    start(readRegisterConfig());
  } catch (error) {
    say(`${PREFIX} requests are not counted: ${reason(error)}`);
  }
}
