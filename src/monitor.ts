/**
 * One process's monitor: a small façade over one room per lifecycle.
 *
 * - each request: {@link RequestPath} (begin, fail, end), in memory only;
 * - each interval: {@link SlotWriter} writes this process's slot of the shared status file;
 * - each stats client: the optional stats server ({@link startStatsServer});
 * - background failures: {@link Reporter}, once per episode.
 *
 * Nothing here touches the disk on the request path, and nothing throws into the app.
 */
import { EventEmitter } from 'node:events';
import type { UwsgiDocument, UwsgiWorker } from './model/document.js';
import type { ResponseLike } from './model/response-end.js';
import { Reporter } from './monitor/reporter.js';
import { type RequestLike, RequestPath } from './monitor/request-path.js';
import { SlotWriter } from './monitor/slot-writer.js';
import { type StatsWiring, startStatsServer } from './monitor/stats-wiring.js';
import { type ResolvedOptions, resolveOptions, type WsgiStatusOptions } from './options.js';
import type { StatsServer } from './server/stats-server.js';

export type { ListeningServer, RequestLike, ResponseLike } from './monitor/request-path.js';

/** Events a monitor emits. */
export interface WsgiStatusMonitorEvents {
  /** A background failure, once per episode, when no `onError` option was given. */
  error: [Error];
  /** A tick wrote the file; the document it wrote. */
  write: [UwsgiDocument];
}

/**
 * Tracks one process's requests and keeps its slot of the status file current.
 * Created by every adapter; use it directly to instrument something else.
 *
 * @example
 * const monitor = new WsgiStatusMonitor('/dev/shm/app-status.json');
 * server.on('request', (req, res) => monitor.begin(req, res));
 * process.on('SIGTERM', () => monitor.close());
 */
export class WsgiStatusMonitor extends EventEmitter<WsgiStatusMonitorEvents> {
  /** The status file's absolute path. */
  readonly path: string;
  /** Options with defaults filled in. */
  readonly options: Readonly<ResolvedOptions>;

  private readonly reporter = new Reporter((error) => this.deliver(error));
  private readonly requests: RequestPath;
  private readonly writer: SlotWriter;
  private readonly statsWiring: StatsWiring | null;
  private closing: Promise<void> | null = null;

  /**
   * @param path The status file (tmpfs such as `/dev/shm` recommended). Relative paths resolve against `process.cwd()`.
   * @param options See {@link WsgiStatusOptions}.
   * @throws {TypeError | RangeError} naming the option, when an option is invalid.
   */
  constructor(path: string, options: WsgiStatusOptions = {}) {
    super();
    this.options = resolveOptions(path, options);
    this.path = this.options.path;
    const report = (kind: string, error: unknown) => this.reporter.report(kind, error);
    this.requests = new RequestPath({ recordRequest: this.options.recordRequest, report });
    this.writer = new SlotWriter(this.options, this.requests, this.reporter, (document) => this.emit('write', document));
    this.statsWiring = startStatsServer(this.options, this.writer, this.reporter, () => this.closing !== null);
  }

  /**
   * The `stats` server, when that option was given (await its `listen()` to
   * know it is up). While another process serves the address, it tries
   * again every interval.
   */
  get stats(): StatsServer | null {
    return this.statsWiring?.server ?? null;
  }

  /** The slot id this process holds, once its first tick has run. */
  get workerId(): number | null {
    return this.writer.slot?.id ?? null;
  }

  /** Whether {@link close} has been called. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /** The document this process wrote last, or `null` before its first write. */
  get lastDocument(): UwsgiDocument | null {
    return this.writer.lastDocument;
  }

  /**
   * A request began. Call once per request with its response; the end is
   * detected by the response's own `'close'`. Never throws.
   */
  begin(req: RequestLike, res: ResponseLike): void {
    this.requests.begin(req, res);
  }

  /** Marks a request as failed (its handler threw or rejected): counted once in `exceptions`. Never throws. */
  fail(res: ResponseLike): void {
    this.requests.fail(res);
  }

  /** Notes a server's listening address for the document's `sockets` and `listen_queue`. */
  observeServer(server: unknown): void {
    this.requests.observeServer(server);
  }

  /** This process's worker entry as of now, from memory. */
  snapshot(now = Date.now()): UwsgiWorker {
    return this.writer.snapshot(now);
  }

  /**
   * Writes this process's slot now (the timer does this every interval).
   * Resolves when done; a tick already running is joined, not queued.
   * Never rejects: failures are reported.
   */
  tick(): Promise<void> {
    return this.closing ?? this.writer.tick();
  }

  /**
   * Stops the timer and the stats server, detaches this process from its
   * slot in a last write (its final counts added to the slot, whose row turns
   * `cheap` unless another process serves in it) and resolves after that
   * write. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.writer.accepting = false;
      await this.statsWiring?.close();
      await this.writer.close();
    })();
    return this.closing;
  }

  /** Delivers a report: to `onError`, else the `'error'` event if heard, else one process warning. */
  private deliver(failure: Error): void {
    if (this.options.onError) this.options.onError(failure);
    else if (this.listenerCount('error') > 0) this.emit('error', failure);
    else process.emitWarning(failure.message, { code: 'WSGI_STATUS' });
  }
}
