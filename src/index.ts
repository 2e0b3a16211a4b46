/**
 * wsgi-status: uWSGI-compatible worker status for Node.js.
 *
 * `import { wsgiStatus } from 'wsgi-status'` is the Express / Connect
 * middleware; `wsgi-status/http`, `wsgi-status/koa` and `wsgi-status/fastify`
 * hold the other adapters.
 */
export { type WsgiStatusMiddleware, wsgiStatus, wsgiStatus as default } from './adapters/express.js';
export type {
  ListenAddress,
  ListenQueueReading,
  ProcessEntry,
  SlotRecord,
  UwsgiApp,
  UwsgiCore,
  UwsgiDocument,
  UwsgiSocket,
  UwsgiWorker,
  UwsgiWorkerStatus,
} from './model/document.js';
export { formatUwsgiJson } from './model/format.js';
export {
  type ListeningServer,
  type RequestLike,
  type ResponseLike,
  WsgiStatusMonitor,
  type WsgiStatusMonitorEvents,
} from './monitor.js';
export type { ResolvedOptions, WsgiStatusOptions } from './options.js';
export type { StatsAddress } from './server/address.js';
export type { DocumentProvider } from './server/providers.js';
export type { HttpRoute, RouteContext } from './server/routes.js';
export { StatsListenError, StatsServer, type StatsServerOptions } from './server/stats-server.js';
export { VERSION } from './version.js';
