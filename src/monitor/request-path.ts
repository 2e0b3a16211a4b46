/**
 * The request path: what a monitor does for each request, in memory only.
 *
 * {@link RequestPath.begin} counts a request in and hangs one `'close'`
 * listener on its response; the end counts it out. A few integer operations,
 * one closure, no I/O, nothing that throws into the app. The slot writer
 * reads the counters at each tick.
 */
import { now as clock } from '../model/clock.js';
import type { ListenAddress } from '../model/document.js';
import { onResponseEnd, type ResponseLike } from '../model/response-end.js';
import { RequestTracker } from '../model/tracker.js';
import { type ConnectionLike, TxLedger } from '../model/tx-ledger.js';
import { defaultBacklog, nameAddress } from '../system/proc.js';

export type { ResponseLike } from '../model/response-end.js';

/** The part of `http.IncomingMessage` / `http2.Http2ServerRequest` the monitor reads. */
export interface RequestLike {
  method?: string;
  url?: string;
  socket?: unknown;
  /** 2 for an HTTP/2 request (its response's socket is the session's). */
  httpVersionMajor?: number;
}

/** Something that listens: `http.Server`, `https.Server`, `http2` servers, `net.Server`. */
export interface ListeningServer {
  address(): string | { address: string; family: string | number; port: number } | null;
  once?(event: 'listening', listener: () => void): unknown;
}

/** The request in flight that a busy worker shows: method and path, never the query. */
export interface CurrentRequest {
  method?: string;
  uri?: string;
}

interface SocketLike {
  server?: unknown;
}

// fail() marks: the failure is counted at the end, or was counted already.
const PENDING = 1;
const COUNTED = 2;

export class RequestPath {
  /** The counters; the tick reads them. */
  readonly tracker = new RequestTracker();
  /** Bytes written, per connection. */
  readonly ledger = new TxLedger();
  /** The addresses of the servers requests arrived on, by name. */
  readonly listen = new Map<string, ListenAddress>();

  private readonly recordRequest: boolean;
  private readonly report: (kind: string, error: unknown) => void;
  private readonly failedKey = Symbol('wsgi-status:failed');
  /** PENDING failure marks not yet taken by their end: while 0, an end need not look for one. */
  private failuresPending = 0;
  /**
   * The latest request begun, and whether it is still in flight: one
   * reference serves both the double-begin check and the busy worker's
   * `method`/`uri` (storing a new object into this long-lived one costs a
   * write barrier; a boolean does not).
   */
  private lastRequest: RequestLike | null = null;
  private lastInFlight = false;
  private lastServer: unknown;

  constructor(options: { recordRequest: boolean; report: (kind: string, error: unknown) => void }) {
    this.recordRequest = options.recordRequest;
    this.report = options.report;
  }

  /** A request began; its end is the response's own `'close'`. Never throws. */
  begin(req: RequestLike, res: ResponseLike): void {
    try {
      // The same request twice in a row (Fastify's server listener and hook, a
      // middleware mounted twice): count it once. Kept after the end, since a
      // response that had already closed ends before its second begin().
      if (req === this.lastRequest) return;
      this.lastRequest = req;
      this.lastInFlight = true;
      const start = clock();
      this.tracker.begin(start);
      // Watch at once: nothing below may leave a begun request without its end (stuck "busy").
      // The start time lives in a closure, not on `res`: Express swaps the
      // prototype of every response, which makes each new property on it a
      // slow store (measured: 4.4% -> 2.8% of an Express server's CPU).
      onResponseEnd(res, () => this.end(res, req, start));
      // The rest is per connection: one property read for every request after its first.
      const socket = req.socket as (SocketLike & ConnectionLike) | null | undefined;
      if (!this.ledger.watches(socket)) this.connectionSeen(req, res, socket);
    } catch (error) {
      this.report('request', error);
    }
  }

  /** Marks a request as failed (its handler threw or rejected): counted once in `exceptions`. Never throws. */
  fail(res: ResponseLike): void {
    const tracked = res as ResponseLike & Record<symbol, unknown>;
    if (tracked[this.failedKey] !== undefined) return;
    const done = res as { writableFinished?: boolean; destroyed?: boolean };
    if ((done.writableFinished === true || done.destroyed === true) && res.statusCode < 500) {
      // Failed after the response was sent (a handler that answered, then
      // threw): count it now; the end, if still to come, must not count it again.
      tracked[this.failedKey] = COUNTED;
      this.tracker.exceptions++;
    } else {
      // Counted at the end (a 5xx that already ended was counted there).
      tracked[this.failedKey] = PENDING;
      this.failuresPending++;
    }
  }

  /** Notes a server's listening address for the document's `sockets` and `listen_queue`. */
  observeServer(server: unknown): void {
    this.lastServer = server;
    const listening = server as ListeningServer | null | undefined;
    if (typeof listening?.address !== 'function') return;
    try {
      const address = listening.address();
      if (address === null) {
        listening.once?.('listening', () => this.observeServer(server));
        return;
      }
      const named = nameAddress(address);
      if (!this.listen.has(named.name)) this.listen.set(named.name, { ...named, max_queue: defaultBacklog() });
    } catch (error) {
      this.report('server-address', error);
    }
  }

  /** The latest request still in flight, when recorded; `null` while idle. */
  currentRequest(): CurrentRequest | null {
    const current = this.recordRequest && this.lastInFlight ? this.lastRequest : null;
    if (current === null) return null;
    return { method: current.method, uri: current.url === undefined ? undefined : pathOf(current.url) };
  }

  /** A connection's first request: its bytes are counted from now on, its server's address noted. */
  private connectionSeen(req: RequestLike, res: ResponseLike, socket: (SocketLike & ConnectionLike) | null | undefined): void {
    // An HTTP/2 request's bytes are its session's: the session's socket is watched.
    this.ledger.watch(
      req.httpVersionMajor === 2
        ? (res as { stream?: { session?: { socket?: ConnectionLike } } }).stream?.session?.socket
        : socket,
    );
    const server = socket?.server;
    if (server !== this.lastServer) this.observeServer(server);
  }

  private end(res: ResponseLike, req: RequestLike, start: number): void {
    try {
      let failed = res.statusCode >= 500;
      // A COUNTED mark needs nothing here: it is only set on a response below 500 that has been sent.
      if (this.failuresPending > 0 && (res as ResponseLike & Record<symbol, unknown>)[this.failedKey] === PENDING) {
        this.failuresPending--;
        failed = true;
      }
      this.tracker.end(clock() - start, failed);
      if (req === this.lastRequest) this.lastInFlight = false;
    } catch (error) {
      this.report('request', error);
    }
  }
}

/** The path of a request URL, never its query string or fragment. */
function pathOf(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}
