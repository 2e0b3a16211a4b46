/**
 * A stats server that answers the way uWSGI 2.0's `--stats` does, so that
 * uwsgitop, Telegraf, uwsgi_exporter, Netdata and Mackerel read it unchanged.
 *
 * - Raw (unix socket or TCP): on accept, write the whole document in uWSGI's
 *   pretty format, then close. Nothing is read first: Netdata sends nothing
 *   at all, uwsgitop and Mackerel's plugin just read until EOF.
 * - HTTP (`--stats-http`): read the request head, answer `HTTP/1.0 200 OK`
 *   with uWSGI's three headers in its order (test/fixtures/
 *   uwsgi-2.0.21-stats-http-response.raw), the body, then close.
 *
 * Every client is served on its own: one that connects and sends nothing,
 * or never reads, costs a socket until its timeout and delays nobody.
 */
import { chmod, stat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { formatUwsgiJson } from '../model/format.js';
import { withLock } from '../store/lock.js';
import { formatStatsAddress, parseStatsAddress, type StatsAddress, StatsListenError } from './address.js';
import type { DocumentProvider } from './providers.js';
import { HTTP_ROUTES, type HttpRoute } from './routes.js';
import { clearStaleSocket } from './unix-socket.js';

export { StatsListenError } from './address.js';

/** How a {@link StatsServer} listens and answers. */
export interface StatsServerOptions {
  /** A unix socket path, or `host:port` / `:port` / `[v6]:port` (uWSGI's `--stats` syntax). */
  address: string | StatsAddress;
  /** Builds the document for each client. */
  provider: DocumentProvider;
  /**
   * Answer HTTP (uWSGI's `--stats-http`) instead of writing the raw document on accept.
   * @default false
   */
  http?: boolean;
  /**
   * File mode of a unix socket.
   * @default 0o660
   */
  mode?: number;
  /**
   * HTTP: paths answered with something other than the JSON document (exact
   * path, query ignored); every other path gets the document.
   * @default HTTP_ROUTES (`/metrics`, `/status`)
   */
  routes?: ReadonlyMap<string, HttpRoute>;
  /** Called when the provider fails for a client (the client then gets nothing, or a 500 over HTTP). */
  onError?: (error: Error) => void;
  /**
   * Keep the process alive while listening. The in-process server passes
   * false: stats alone must never keep an app from exiting.
   * @default true
   */
  ref?: boolean;
  /**
   * HTTP: how long a client has to send its whole request head, ms.
   * @default 5000
   */
  headTimeout?: number;
  /**
   * HTTP: the largest request head accepted, bytes; larger ones are dropped.
   * @default 16384
   */
  maxHeadBytes?: number;
  /**
   * A client that stops reading for this long (ms) is dropped.
   * @default 10000
   */
  idleTimeout?: number;
}

// Exactly what uWSGI 2.0.21 sends, header order included.
const HTTP_HEAD =
  'HTTP/1.0 200 OK\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\n\r\n';
const HTTP_ERROR =
  'HTTP/1.0 500 Internal Server Error\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nstats unavailable\n';
const HEAD_END_CRLF = Buffer.from('\r\n\r\n');
const HEAD_END_LF = Buffer.from('\n\n');

/**
 * A uWSGI-compatible stats server.
 *
 * @example
 * const server = new StatsServer({ address: '/run/app/stats.sock', provider });
 * await server.listen();
 */
export class StatsServer {
  /** Where it listens; for TCP port 0, the port actually bound once listening. */
  address: StatsAddress;
  readonly http: boolean;
  readonly mode: number;

  private readonly provider: DocumentProvider;
  private readonly options: StatsServerOptions;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private listening: Promise<void> | null = null;
  private closed = false;

  constructor(options: StatsServerOptions) {
    this.address = typeof options.address === 'string' ? parseStatsAddress(options.address) : options.address;
    this.http = options.http ?? false;
    this.mode = options.mode ?? 0o660;
    this.provider = options.provider;
    this.options = options;
    // Half-open allowed: a client may shut down its side right after its request and still read the answer.
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket));
    // Errors after listening (EMFILE on accept...) must not crash the app.
    this.server.on('error', () => undefined);
  }

  /** The address as `host:port` or the socket path. */
  get name(): string {
    return formatStatsAddress(this.address);
  }

  /**
   * Starts listening. A unix socket path gets the stale-file check first, under
   * a lock so that cluster workers starting together never remove each
   * other's live socket. Rejects with a {@link StatsListenError}; after a
   * failure (say EADDRINUSE: another process of the app serves the address)
   * it may be called again, and tries again.
   */
  listen(): Promise<void> {
    this.listening ??= (this.address.kind === 'unix' ? this.listenUnix(this.address.path) : this.listenTcp(this.address)).catch(
      (error: unknown) => {
        this.listening = null;
        throw error;
      },
    );
    return this.listening;
  }

  /** Whether it listens now. */
  get isListening(): boolean {
    return this.server.listening;
  }

  /** Stops listening and drops clients still connected. Safe to call more than once. */
  close(): Promise<void> {
    this.closed = true;
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
    });
  }

  private async listenTcp(address: Extract<StatsAddress, { kind: 'tcp' }>): Promise<void> {
    await this.bind({ host: address.host, port: address.port });
    const bound = this.server.address();
    if (bound !== null && typeof bound === 'object') this.address = { ...address, port: bound.port };
  }

  private async listenUnix(path: string): Promise<void> {
    const directory = dirname(path);
    const info = await stat(directory).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new StatsListenError(path, 'ENOENT', `the directory ${directory} does not exist`, error);
      throw this.failure(error);
    });
    if (!info.isDirectory()) throw new StatsListenError(path, 'ENOTDIR', `${directory} is not a directory`);
    const run = async () => {
      await clearStaleSocket(path);
      await this.bind({ path });
      await chmod(path, this.mode).catch((error: NodeJS.ErrnoException) => {
        throw this.failure(error);
      });
    };
    try {
      await withLock(path, { lockPath: `${path}.lock`, staleMs: 5000, waitMs: 5000, onCompromised: () => undefined }, run);
    } catch (error) {
      if (error instanceof StatsListenError) throw error;
      throw this.failure(error as NodeJS.ErrnoException);
    }
  }

  private bind(options: { path: string } | { host: string; port: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new StatsListenError(this.name, 'ECLOSED', 'the server was closed before it could listen'));
        return;
      }
      const onError = (error: NodeJS.ErrnoException) => {
        this.server.off('listening', onListening);
        reject(this.failure(error));
      };
      const onListening = () => {
        this.server.off('error', onError);
        if (this.options.ref === false) this.server.unref();
        // close() ran while this listen was on its way: undo it.
        if (this.closed) this.server.close();
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen(options);
    });
  }

  private failure(error: NodeJS.ErrnoException): StatsListenError {
    const code = error.code ?? 'UNKNOWN';
    const reasons: Record<string, string> = {
      EADDRINUSE: 'address already in use (EADDRINUSE)',
      EACCES: 'permission denied (EACCES)',
      EADDRNOTAVAIL: 'address not available on this host (EADDRNOTAVAIL)',
      ENOTFOUND: 'host name not found (ENOTFOUND)',
      ELOCKED: `the lock ${this.name}.lock stayed busy (ELOCKED)`,
    };
    return new StatsListenError(this.name, code, reasons[code] ?? error.message, error);
  }

  private onConnection(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.options.idleTimeout ?? 10_000, () => socket.destroy());
    if (!this.http) {
      // Discard anything the client sends, so closing never turns into a reset that truncates the answer.
      socket.resume();
      this.answer(socket, false);
      return;
    }
    this.readHead(socket);
  }

  private readHead(socket: Socket): void {
    const maxHead = this.options.maxHeadBytes ?? 16_384;
    let head = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => {
      if (!done) socket.destroy();
    }, this.options.headTimeout ?? 5000);
    timer.unref();
    const finish = () => {
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.resume();
      const route = (this.options.routes ?? HTTP_ROUTES).get(requestPath(head));
      if (route === undefined) this.answer(socket, true);
      else this.answerRoute(socket, route);
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.includes(HEAD_END_CRLF) || head.includes(HEAD_END_LF)) finish();
      else if (head.length > maxHead) {
        done = true;
        clearTimeout(timer);
        socket.destroy();
      }
    };
    // A client that shuts its side down after a partial head still gets an answer.
    const onEnd = () => {
      if (!done) finish();
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', () => clearTimeout(timer));
  }

  /** An HTTP route's answer: `200` with its type and headers, or `500` when it fails. */
  private answerRoute(socket: Socket, route: HttpRoute): void {
    socket.once('finish', () => socket.destroy());
    const context = { document: this.provider, server: this.name, report: (error: unknown) => this.report(error) };
    Promise.resolve()
      .then(() => route.body(context))
      .then(
        (body) => {
          if (socket.destroyed) return;
          let head = `HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: ${route.contentType}\r\n`;
          for (const [name, value] of Object.entries(route.headers ?? {})) head += `${name}: ${value}\r\n`;
          socket.end(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        },
        (error: unknown) => this.fail(socket, true, error),
      );
  }

  private fail(socket: Socket, http: boolean, error: unknown): void {
    this.report(error);
    if (socket.destroyed) return;
    if (http) socket.end(HTTP_ERROR);
    else socket.destroy();
  }

  private report(error: unknown): void {
    try {
      this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
    } catch {
      // A throwing onError must not take the server down.
    }
  }

  private answer(socket: Socket, http: boolean): void {
    // Close fully once everything is handed to the kernel (uWSGI closes right after writing).
    socket.once('finish', () => socket.destroy());
    this.provider().then(
      (document) => {
        if (socket.destroyed) return;
        const body = formatUwsgiJson(document);
        socket.end(http ? HTTP_HEAD + body : body);
      },
      (error: unknown) => this.fail(socket, http, error),
    );
  }
}

/** The path of an HTTP request head's request line, without its query; `''` when there is none. */
function requestPath(head: Buffer): string {
  const end = head.indexOf(10);
  const line = head.toString('latin1', 0, end === -1 ? head.length : end);
  const target = line.split(' ')[1] ?? '';
  const query = target.search(/[?#]/);
  return query === -1 ? target : target.slice(0, query);
}
