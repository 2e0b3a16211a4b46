/**
 * Koa 2 and 3: `app.use(wsgiStatus(path))`.
 *
 * Koa writes the body after the middleware chain has resolved (and never,
 * with `ctx.respond = false`), so a request ends with `ctx.res`, not with
 * `await next()`: the monitor watches the response itself. An error thrown
 * downstream is counted in `exceptions` when Koa reports it with the app's
 * `'error'` event (`ctx.onerror`, for every error that reaches Koa), and the
 * middleware does not touch it: it returns `next()` itself, with no `async`
 * wrapper of its own (one promise and one await fewer per request; about two
 * points of a Koa hello-world's CPU).
 */
import type { RequestLike, ResponseLike, WsgiStatusMonitor } from '../monitor.js';
import type { WsgiStatusOptions } from '../options.js';
import { acquireMonitor } from './shared.js';

/**
 * The part of a Koa context the middleware uses. Every Koa 2 and 3 context
 * has it; declaring it here keeps `koa` and `@types/koa` out of these types.
 */
export interface KoaContextLike {
  req: RequestLike;
  res: ResponseLike;
  /** The application, whose `'error'` events count `exceptions`. */
  app?: KoaAppLike;
}

/** The part of a Koa application the middleware uses. */
export interface KoaAppLike {
  on(event: 'error', listener: (error: unknown, ctx?: KoaContextLike) => void): unknown;
  removeListener(event: 'error', listener: (error: unknown, ctx?: KoaContextLike) => void): unknown;
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
 * Creates the middleware. Put it first, so it sees every request.
 *
 * @param path The status file, e.g. `/dev/shm/app-status.json`.
 * @param options See {@link WsgiStatusOptions}; validated here, once.
 * @throws {TypeError | RangeError} naming the option, when an option is invalid.
 * @example
 * const app = new Koa();
 * app.use(wsgiStatus('/dev/shm/app-status.json'));
 */
export function wsgiStatus(path: string, options?: WsgiStatusOptions): WsgiStatusKoaMiddleware {
  const { monitor, release } = acquireMonitor(path, options);
  const onAppError = (_error: unknown, ctx?: KoaContextLike) => {
    if (ctx?.res) monitor.fail(ctx.res);
  };
  // The apps whose 'error' events are heard: learnt from the first request
  // each serves (the middleware is created before it is given to an app).
  const apps = new Set<KoaAppLike>();
  let lastApp: KoaAppLike | undefined;
  function wsgiStatusMiddleware(ctx: KoaContextLike, next: KoaNext): Promise<void> {
    monitor.begin(ctx.req, ctx.res);
    const app = ctx.app;
    if (app !== lastApp && app !== undefined) {
      lastApp = app;
      if (!apps.has(app)) {
        apps.add(app);
        app.on('error', onAppError);
      }
    }
    // Whatever downstream resolves with, Koa ignores it.
    return next() as Promise<void>;
  }
  const close = () => {
    for (const app of apps) app.removeListener('error', onAppError);
    apps.clear();
    return release();
  };
  return Object.assign(wsgiStatusMiddleware, { monitor, close });
}

export default wsgiStatus;
