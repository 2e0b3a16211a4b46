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
 * Configuration comes from the environment (register-env.ts), read when the
 * first HTTP server listens: a bad value is one line on stderr and is left
 * out; nothing here ever throws into the app.
 */
import dc from 'node:diagnostics_channel';
import { lstatSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { WsgiStatusMonitor } from '../monitor.js';
import { PREFIX, readRegisterConfig, reason } from './register-env.js';
import { isHttpServer, onRequestStart } from './server-requests.js';
import { acquireMonitor } from './shared.js';

const ONCE = Symbol.for('wsgi-status.register');

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

function start(): void {
  let off = false;
  let monitor: WsgiStatusMonitor | null = null;

  /** The monitor, created on first use (a server listening, else a first request). */
  const open = (): WsgiStatusMonitor | null => {
    if (monitor !== null || off) return monitor;
    off = true; // until it exists: one attempt, one set of lines
    const config = readRegisterConfig();
    for (const problem of config.problems) say(problem);
    const path = config.path;
    if (path === null) return null;
    const explicit = Object.keys(config.options);
    try {
      if (config.isDefaultPath) privateDirectory(dirname(path));
      // Held for the life of the process (never released): the exit hook removes the slot.
      const hold = acquireMonitor(
        path,
        { ...config.options, onError: (error) => say(`${PREFIX} ${reason(error)}`) },
        (joined) => {
          // The app's own adapter made the monitor first: the environment's explicit settings that differ are not used.
          const unused = joined.ignored.filter((key) => explicit.includes(key));
          if (unused.length > 0) {
            say(
              `${PREFIX} ${path} is already monitored by the app's own adapter; its options stay (${unused.join(', ')} from the environment not applied)`,
            );
          }
        },
      );
      monitor = hold.monitor;
      off = false;
    } catch (error) {
      say(`${PREFIX} requests are not counted: ${reason(error)}`);
    }
    return monitor;
  };

  dc.subscribe('tracing:net.server.listen:asyncEnd', (message) => {
    const server = (message as { server?: unknown }).server;
    if (isHttpServer(server)) open()?.observeServer(server);
  });
  // The hot path: one property read each for the request and response, then the monitor's begin().
  onRequestStart((message) => {
    (monitor ?? open())?.begin(message.request, message.response);
  });
}

// Loaded twice (NODE_OPTIONS and node_args both, or two copies of the library): subscribe once.
const global = globalThis as typeof globalThis & { [ONCE]?: true };
if (global[ONCE] === undefined) {
  global[ONCE] = true;
  try {
    start();
  } catch (error) {
    say(`${PREFIX} requests are not counted: ${reason(error)}`);
  }
}
