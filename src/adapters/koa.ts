/**
 * Koa 2 and 3: `app.use(wsgiStatus(path))`.
 *
 * Koa writes the body after the middleware chain has resolved (and never,
 * with `ctx.respond = false`), so a request ends with `ctx.res`, not with
 * `await next()`: the monitor watches the response itself. An error thrown
 * downstream is counted in `exceptions` and rethrown as it was, for Koa's
 * own error handling (or the app's) to answer.
 */
import { type RequestLike, type ResponseLike, WsgiStatusMonitor } from '../monitor.js';
import type { WsgiStatusOptions } from '../options.js';

/**
 * The part of a Koa context the middleware uses. Every Koa 2 and 3 context
 * has it; declaring it here keeps `koa` and `@types/koa` out of these types.
 */
export interface KoaContextLike {
  req: RequestLike;
  res: ResponseLike;
}

/** Koa's `next`. */
export type KoaNext = () => Promise<unknown>;

/** A Koa middleware with the monitor and `close()` attached. */
export interface WsgiStatusKoaMiddleware {
  (ctx: KoaContextLike, next: KoaNext): Promise<void>;
  /** The monitor behind it. */
  readonly monitor: WsgiStatusMonitor;
  /** Stops the timer, removes this process's slot, resolves after the last write. */
  close(): Promise<void>;
}

/**
 * Creates the middleware. Put it first, so it sees every request and every
 * error thrown below it.
 *
 * @param path The status file, e.g. `/dev/shm/app-status.json`.
 * @param options See {@link WsgiStatusOptions}; validated here, once.
 * @throws {TypeError | RangeError} naming the option, when an option is invalid.
 * @example
 * const app = new Koa();
 * app.use(wsgiStatus('/dev/shm/app-status.json'));
 */
export function wsgiStatus(path: string, options?: WsgiStatusOptions): WsgiStatusKoaMiddleware {
  const monitor = new WsgiStatusMonitor(path, options);
  async function wsgiStatusMiddleware(ctx: KoaContextLike, next: KoaNext): Promise<void> {
    monitor.begin(ctx.req, ctx.res);
    try {
      await next();
    } catch (error) {
      monitor.fail(ctx.res);
      throw error;
    }
  }
  return Object.assign(wsgiStatusMiddleware, { monitor, close: () => monitor.close() });
}

export default wsgiStatus;
