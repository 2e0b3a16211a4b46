/**
 * Fastify 4 and 5: `fastify.register(wsgiStatus, { path })`.
 *
 * Wrapped with fastify-plugin, so its hooks are not encapsulated and its
 * decoration is visible to every context. The end of a request is watched on
 * `reply.raw`, not with `onResponse`, which Fastify skips when the client
 * aborts (even once the handler has answered).
 */
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { WsgiStatusMonitor } from '../monitor.js';
import type { WsgiStatusOptions } from '../options.js';
import { hookServerRequests } from './server-requests.js';
import { acquireMonitor } from './shared.js';

/** The plugin's options: the status file's `path` and the options shared by every adapter. */
export interface WsgiStatusFastifyOptions extends WsgiStatusOptions {
  /** The status file, e.g. `/dev/shm/app-status.json`. Required. */
  path: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The monitor registered by `wsgi-status/fastify`. */
    readonly wsgiStatus: WsgiStatusMonitor;
  }
}

// Fastify hands its own register options to the plugin in the same object.
const REGISTER_KEYS = ['prefix', 'logLevel', 'logSerializers'];

const plugin: FastifyPluginAsync<WsgiStatusFastifyOptions> = async (fastify, options) => {
  if (fastify.hasDecorator('wsgiStatus')) {
    throw new Error('wsgi-status: the plugin is already registered on this instance (fastify.wsgiStatus exists)');
  }
  const { path, ...rest } = options as WsgiStatusFastifyOptions & Record<string, unknown>;
  for (const key of REGISTER_KEYS) delete rest[key];
  // Validates `path` and every option now, so a bad one fails register()/ready() naming it.
  const { monitor, release } = acquireMonitor(path, rest);
  fastify.decorate('wsgiStatus', monitor);
  // Fastify answers a malformed URL or an over-long parameter before any hook runs (onBadUrl
  // in fastify.js), so requests begin as the server receives them (server-requests.ts). The
  // onRequest hook covers inject(); for a request already begun it does nothing.
  const unhook = hookServerRequests(fastify.server, monitor);
  fastify.addHook('onRequest', (request, reply, done) => {
    monitor.begin(request.raw, reply.raw);
    done();
  });
  // Every error Fastify's error handler answers, whatever its status: a handler's or hook's
  // throw or rejection, and Fastify's own (a body that does not parse, a failed validation).
  fastify.addHook('onError', (_request, reply, _error, done) => {
    monitor.fail(reply.raw);
    done();
  });
  fastify.addHook('onClose', () => {
    unhook();
    return release();
  });
};

/**
 * The plugin. Register it once, on the root instance: every request the
 * server receives is counted, in every encapsulated context. The monitor is
 * then `fastify.wsgiStatus`, and `fastify.close()` stops it and removes this
 * process's slot.
 *
 * @throws {TypeError | RangeError} from `register()` / `ready()`, naming the option, when an option is invalid.
 * @example
 * const app = Fastify();
 * await app.register(wsgiStatus, { path: '/dev/shm/app-status.json' });
 */
export const wsgiStatus = fp(plugin, { fastify: '4.x || 5.x', name: 'wsgi-status' });

export default wsgiStatus;
