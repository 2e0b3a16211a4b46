/**
 * Express 4 and 5, and any Connect-style stack: `app.use(wsgiStatus(path))`.
 *
 * The middleware only starts the request's clock and passes on. Express's
 * error handler answers a thrown or rejected handler with a 5xx, which is
 * what counts it in `exceptions`.
 */
import type { RequestLike, ResponseLike, WsgiStatusMonitor } from '../monitor.js';
import type { WsgiStatusOptions } from '../options.js';
import { acquireMonitor } from './shared.js';

/** A Connect/Express middleware with the monitor and `close()` attached. */
export interface WsgiStatusMiddleware {
  (req: RequestLike, res: ResponseLike, next: (error?: unknown) => void): void;
  /** The monitor behind it. */
  readonly monitor: WsgiStatusMonitor;
  /** Stops the timer, removes this process's slot, resolves after the last write. */
  close(): Promise<void>;
}

/**
 * Creates the middleware. Put it first, so it sees every request.
 *
 * @param path The status file, e.g. `/dev/shm/app-status.json`.
 * @example
 * const app = express();
 * app.use(wsgiStatus('/dev/shm/app-status.json'));
 */
export function wsgiStatus(path: string, options?: WsgiStatusOptions): WsgiStatusMiddleware {
  const { monitor, release } = acquireMonitor(path, options);
  function wsgiStatusMiddleware(req: RequestLike, res: ResponseLike, next: (error?: unknown) => void): void {
    monitor.begin(req, res);
    next();
  }
  return Object.assign(wsgiStatusMiddleware, { monitor, close: release });
}

export default wsgiStatus;
