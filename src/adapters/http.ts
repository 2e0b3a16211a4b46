/**
 * node:http (and https, http2's compatibility API): instrument a server, or
 * wrap a request handler. Anything built on `http.Server` — Hapi, Nest, a
 * Next.js custom server — is covered by {@link instrument}.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestLike, ResponseLike, WsgiStatusMonitor } from '../monitor.js';
import type { WsgiStatusOptions } from '../options.js';
import { hookServerRequests, type RequestEmitter } from './server-requests.js';
import { acquireMonitor } from './shared.js';

export type { RequestEmitter } from './server-requests.js';

/** What {@link instrument} returns. */
export interface Instrumentation {
  /** The monitor behind it. */
  readonly monitor: WsgiStatusMonitor;
  /** Stops listening to the server, removes this process's slot, resolves after the last write. */
  close(): Promise<void>;
}

/**
 * Counts every request of `server` into the status file at `path`. The
 * server's `'close'` closes the monitor too. An http/https server is heard on
 * Node's request diagnostics channel (`'checkContinue'` requests included,
 * hand-emitted `'request'` events not); any other server on `'request'`.
 *
 * @example
 * const server = http.createServer(app);
 * const status = instrument(server, '/dev/shm/app-status.json');
 * server.listen(3000);
 */
export function instrument(server: RequestEmitter, path: string, options?: WsgiStatusOptions): Instrumentation {
  if (server === null || typeof server !== 'object' || typeof server.prependListener !== 'function') {
    throw new TypeError('wsgi-status: instrument(server, path) needs an http.Server (or anything that emits "request")');
  }
  const { monitor, release } = acquireMonitor(path, options);
  const unhook = hookServerRequests(server, monitor);
  monitor.observeServer(server);
  const close = () => {
    unhook();
    return release();
  };
  server.once('close', () => void close());
  return { monitor, close };
}

/** A request handler that {@link wrap} can take. */
export type RequestHandler<Req extends RequestLike = IncomingMessage, Res extends ResponseLike = ServerResponse> = (
  req: Req,
  res: Res,
) => unknown;

/** A wrapped handler: the same function signature, plus the monitor and `close()`. */
export type WrappedHandler<Req extends RequestLike = IncomingMessage, Res extends ResponseLike = ServerResponse> = ((
  req: Req,
  res: Res,
) => unknown) &
  Instrumentation;

/**
 * Wraps a request handler. A handler that throws or rejects is counted in
 * `exceptions`; the error itself goes on exactly as it would have (rethrown,
 * or the returned promise rejects with it).
 *
 * @example
 * const handler = wrap((req, res) => res.end('ok'), '/dev/shm/app-status.json');
 * http.createServer(handler).listen(3000);
 */
export function wrap<Req extends RequestLike = IncomingMessage, Res extends ResponseLike = ServerResponse>(
  handler: RequestHandler<Req, Res>,
  path: string,
  options?: WsgiStatusOptions,
): WrappedHandler<Req, Res> {
  if (typeof handler !== 'function') throw new TypeError('wsgi-status: wrap(handler, path) needs a request handler function');
  const { monitor, release } = acquireMonitor(path, options);
  const wrapped = function wsgiStatusHandler(this: unknown, req: Req, res: Res): unknown {
    monitor.begin(req, res);
    let result: unknown;
    try {
      result = handler.call(this, req, res);
    } catch (error) {
      monitor.fail(res);
      throw error;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      return Promise.resolve(result).then(undefined, (error: unknown) => {
        monitor.fail(res);
        throw error;
      });
    }
    return result;
  };
  return Object.assign(wrapped, { monitor, close: release });
}
