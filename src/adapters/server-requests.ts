/**
 * How an adapter hears a server's requests, before the app's own handler.
 *
 * Node's `http.server.request.start` diagnostics channel: published for every
 * request of every node:http and node:https server, with its request,
 * response, socket and server, before the server's `'request'` listeners run
 * (and for a request answered through `'checkContinue'`, which never reaches
 * them). Node 20 publishes nothing for http2.
 *
 * Listening here costs a request less than a `'request'` listener: Node
 * builds the message only while someone subscribes, then calls the
 * subscribers directly, where a second `'request'` listener makes every emit
 * copy the listener array, and one wrapped around the app's own adds a call.
 */
import dc from 'node:diagnostics_channel';
import { Server as HttpServer } from 'node:http';
import type { ListeningServer, RequestLike, ResponseLike } from '../monitor.js';

const REQUEST_START = 'http.server.request.start';

/** What Node publishes for each request. */
export interface RequestStart {
  request: RequestLike;
  response: ResponseLike;
  socket: unknown;
  server: unknown;
}

/** An http.Server or https.Server: not a plain net.Server (a cluster primary's, the stats server), not tls alone. */
export function isHttpServer(server: unknown): boolean {
  if (server instanceof HttpServer) return true;
  // https.Server is a tls.Server, not an http.Server; node:https is only loaded for a TLS server.
  if (typeof (server as { setSecureContext?: unknown } | null)?.setSecureContext !== 'function') return false;
  return server instanceof process.getBuiltinModule('node:https').Server;
}

/** Calls `listener` for every request of every node:http/https server; returns what stops it. */
export function onRequestStart(listener: (message: RequestStart) => void): () => void {
  const subscriber = listener as (message: unknown, name: string | symbol) => void;
  dc.subscribe(REQUEST_START, subscriber);
  return () => {
    dc.unsubscribe(REQUEST_START, subscriber);
  };
}

/** A server that emits `'request'` with `(req, res)`: `http.Server`, `https.Server`, `http2` servers. */
export interface RequestEmitter {
  prependListener(event: 'request', listener: RequestListener): unknown;
  removeListener(event: 'request', listener: RequestListener): unknown;
  /** EventEmitter's: with it, a server's only `'request'` listener is taken over instead of joined (see below). */
  rawListeners?(event: 'request'): readonly unknown[];
  once(event: 'close', listener: () => void): unknown;
  address(): ReturnType<ListeningServer['address']>;
}

type RequestListener = (req: RequestLike, res: ResponseLike) => unknown;

/** What is told of each request: a monitor. */
interface RequestBeginner {
  begin(req: RequestLike, res: ResponseLike): void;
}

/**
 * Calls `begin` for every request of `server`, before the app's own handler
 * runs; returns what undoes it.
 *
 * A node:http or node:https server needs no listener at all: Node publishes
 * each of its requests on the channel above first, which costs less per
 * request than any `'request'` listener.
 *
 * Any other server (http2, anything that emits `'request'`) gets a
 * listener. A server made with `createServer(handler)` has one, and Node
 * calls a lone listener directly, but a second one makes every request copy
 * the listener array and make two calls. So a lone listener is replaced by
 * one function that begins the request and calls it. The replacement carries
 * it as `.listener`, as `once()`'s wrappers do, so `server.listeners('request')`
 * still lists the app's handler and `removeListener('request', handler)`
 * still removes it. Otherwise (no listener yet, several, a `once()` one) the
 * monitor's own listener goes first.
 */
export function hookServerRequests(server: RequestEmitter, monitor: RequestBeginner): () => void {
  if (isHttpServer(server)) {
    return onRequestStart((message) => {
      if (message.server === server) monitor.begin(message.request, message.response);
    });
  }
  const listeners = server.rawListeners?.('request');
  const handler = listeners?.length === 1 ? listeners[0] : undefined;
  if (typeof handler !== 'function' || (handler as { listener?: unknown }).listener !== undefined) {
    const onRequest = (req: RequestLike, res: ResponseLike) => monitor.begin(req, res);
    server.prependListener('request', onRequest);
    return () => server.removeListener('request', onRequest);
  }
  const app = handler as (this: unknown, req: RequestLike, res: ResponseLike) => unknown;
  const counted = Object.assign(
    function wsgiStatusRequest(this: unknown, req: RequestLike, res: ResponseLike): unknown {
      monitor.begin(req, res);
      return app.call(this, req, res);
    },
    { listener: app },
  );
  server.removeListener('request', app);
  server.prependListener('request', counted);
  return () => {
    // Put the handler back where it was, unless the app removed it meanwhile (or this ran already).
    if (!server.rawListeners?.('request').includes(counted)) return;
    server.removeListener('request', counted);
    server.prependListener('request', app);
  };
}
