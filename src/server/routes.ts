/**
 * The HTTP form of the stats server answers every path with uWSGI's JSON
 * document, byte for byte, because readers request `/` or whatever a user
 * typed. A few paths that no uWSGI reader requests render something else
 * from the same document (DESIGN.md, "HTTP endpoints"): each is one entry
 * here, in a file of its own beside the stats server.
 */
import type { UwsgiDocument } from '../model/document.js';
import { PROMETHEUS_ROUTE } from './prometheus.js';
import { STATUS_PAGE } from './status-page.js';

/** What a route is given to build its answer. */
export interface RouteContext {
  /** Builds the current document (the same one the JSON answer would carry). Call it only if needed. */
  document: () => Promise<UwsgiDocument>;
  /** The stats server's address as uWSGI names it (`127.0.0.1:1717`, or a socket path). */
  server: string;
  /** Hands a failure the route recovered from to the server's `onError`. */
  report?: (error: unknown) => void;
}

/** An HTTP answer other than the JSON document. */
export interface HttpRoute {
  /** The `Content-Type` header. */
  contentType: string;
  /** More headers, such as `Content-Security-Policy`. */
  headers?: Readonly<Record<string, string>>;
  /** The body. A rejection answers 500, like a failing document. */
  body(context: RouteContext): string | Promise<string>;
}

/** The routes every HTTP stats server (in-app and `wsgi-status serve`) answers, by exact path (no query). */
export const HTTP_ROUTES: ReadonlyMap<string, HttpRoute> = new Map<string, HttpRoute>([
  ['/metrics', PROMETHEUS_ROUTE],
  ['/status', STATUS_PAGE],
]);
