/**
 * One process's monitor: the tracker on the request path, and a timer that
 * writes this process's slot of the shared status file every interval.
 *
 * Adapters only call {@link WsgiStatusMonitor.begin} (and
 * {@link WsgiStatusMonitor.fail}); everything else happens on the timer.
 * Nothing here touches the disk on the request path, and nothing throws into
 * the app: background failures are reported once per kind through `onError`
 * or the `'error'` event.
 */
import { EventEmitter } from 'node:events';
import { type IntervalHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { onExit } from 'signal-exit';
import { buildDocument, buildWorker, type ListenAddress, type UwsgiDocument, type UwsgiWorker } from './model/document.js';
import { formatUwsgiJson } from './model/format.js';
import type { ParsedStatus } from './model/parse.js';
import { onResponseEnd, type ResponseLike } from './model/response-end.js';
import { RequestTracker } from './model/tracker.js';
import { type ConnectionLike, TxLedger } from './model/tx-ledger.js';
import { type ResolvedOptions, resolveOptions, type WsgiStatusOptions } from './options.js';
import { coalesce, createStatusFileProvider } from './server/providers.js';
import { StatsServer } from './server/stats-server.js';
import { isProcessAlive, reconcile, retire, type SlotAssignment } from './store/slots.js';
import { describeProblem, StatusFile } from './store/status-file.js';
import { defaultBacklog, measureListenQueues, nameAddress, readMemorySize } from './system/proc.js';
import { detectProcessRole, type ProcessRole } from './system/process-role.js';
import { VERSION } from './version.js';

export type { ResponseLike } from './model/response-end.js';

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

interface SocketLike {
  server?: unknown;
}

/** Events a monitor emits. */
export interface WsgiStatusMonitorEvents {
  /** A background failure, once per kind, when no `onError` option was given. */
  error: [Error];
  /** A tick wrote the file; the document it wrote. */
  write: [UwsgiDocument];
}

// fail() marks: the failure is counted at the end, or was counted already.
const PENDING = 1;
const COUNTED = 2;
// Run the orphaned-temp-file sweep on the first tick and every tenth after.
const ORPHAN_SWEEP_EVERY = 10;

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

  private readonly tracker = new RequestTracker();
  private readonly ledger = new TxLedger();
  private readonly file: StatusFile;
  private readonly failedKey = Symbol('wsgi-status:failed');
  /** PENDING failure marks not yet taken by their end: while 0, an end need not look for one. */
  private failuresPending = 0;
  private current: RequestLike | null = null;
  private lastResponse: ResponseLike | null = null;
  private lastServer: unknown;
  private readonly listen = new Map<string, ListenAddress>();
  private assignment: SlotAssignment | null = null;
  private role: ProcessRole | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private accepting = true;
  private ticks = 0;
  private readonly reported = new Set<string>();
  private eventLoop = performance.eventLoopUtilization();
  private readonly delay: IntervalHistogram;
  private readonly removeExitHook: () => void;
  private document: UwsgiDocument | null = null;
  private statsServer: StatsServer | null = null;

  /**
   * @param path The status file (tmpfs such as `/dev/shm` recommended). Relative paths resolve against `process.cwd()`.
   * @param options See {@link WsgiStatusOptions}.
   * @throws {TypeError | RangeError} naming the option, when an option is invalid.
   */
  constructor(path: string, options: WsgiStatusOptions = {}) {
    super();
    this.options = resolveOptions(path, options);
    this.path = this.options.path;
    const interval = this.options.interval;
    this.file = new StatusFile(this.path, {
      mode: this.options.mode,
      lock: {
        staleMs: Math.min(5000, Math.max(2000, 2 * interval)),
        waitMs: Math.max(5, Math.min(interval, 1000) - 5),
        onCompromised: (error) => this.report('lock-compromised', error),
      },
    });
    this.delay = monitorEventLoopDelay({ resolution: 20 });
    this.delay.enable();
    // A clean exit, or death by a signal the app does not handle, removes the
    // slot at once: signal-exit then re-raises the signal, so the process dies
    // the way it would have. A crash or kill -9 leaves it to the others' pruning.
    this.removeExitHook = onExit(() => this.removeSlotSync());
    // Jitter the first tick so workers forked together do not collide on the lock.
    this.schedule(Math.floor(Math.random() * interval));
    this.startStatsServer();
  }

  /** The `stats` server, when that option was given (await its `listen()` to know it is up). */
  get stats(): StatsServer | null {
    return this.statsServer;
  }

  /** The slot id this process holds, once its first tick has run. */
  get workerId(): number | null {
    return this.assignment?.id ?? null;
  }

  /** The document this process wrote last, or `null` before its first write. */
  get lastDocument(): UwsgiDocument | null {
    return this.document;
  }

  /**
   * A request began. Call once per request with its response; the end is
   * detected by the response's own `'finish'` / `'close'`. Never throws.
   */
  begin(req: RequestLike, res: ResponseLike): void {
    try {
      // The same request twice in a row (Fastify's server listener and hook, a
      // middleware mounted twice): count it once.
      if (res === this.lastResponse) return;
      this.lastResponse = res;
      const now = performance.now();
      this.tracker.begin(now);
      // Watch at once: nothing below may leave a begun request without its end (stuck "busy").
      // The start time lives in a closure, not on `res`: Express swaps the
      // prototype of every response, which makes each new property on it a
      // slow store (measured: 4.4% -> 2.8% of an Express server's CPU).
      onResponseEnd(res, () => this.end(res, now));
      if (this.options.recordRequest) this.current = req;
      const socket = req.socket as (SocketLike & ConnectionLike) | null | undefined;
      // tx is counted per connection; an HTTP/2 request's is its session's socket.
      this.ledger.watch(
        req.httpVersionMajor === 2
          ? (res as { stream?: { session?: { socket?: ConnectionLike } } }).stream?.session?.socket
          : socket,
      );
      const server = socket?.server;
      if (server !== this.lastServer) this.observeServer(server);
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

  /** This process's worker entry as of now, from memory. */
  snapshot(now = Date.now()): UwsgiWorker {
    this.tracker.tx = this.ledger.total();
    return this.entry(now);
  }

  /** This process's worker entry, with `tx` as last counted. */
  private entry(now: number): UwsgiWorker {
    const tracker = this.tracker;
    const assignment = this.assignment;
    const base = assignment?.base;
    const current = tracker.inFlight > 0 ? this.current : null;
    const utilization = performance.eventLoopUtilization(this.eventLoop).utilization;
    const memory = readMemorySize();
    return buildWorker({
      id: assignment?.id ?? 1,
      pid: process.pid,
      accepting: this.accepting,
      requests: (base?.requests ?? 0) + tracker.requests,
      deltaRequests: tracker.requests,
      exceptions: (base?.exceptions ?? 0) + tracker.exceptions,
      inFlight: tracker.inFlight,
      rss: memory.rss,
      vsz: memory.vsz,
      heapUsed: getHeapStatistics().used_heap_size,
      runningTime: (base?.runningTime ?? 0) + tracker.runningTime,
      lastSpawn: Math.floor(performance.timeOrigin / 1000),
      respawnCount: assignment?.respawnCount ?? 1,
      tx: (base?.tx ?? 0) + tracker.tx,
      avgRt: tracker.avgRt,
      requestStart: tracker.inFlight > 0 ? Math.floor((performance.timeOrigin + tracker.lastBeginAt) / 1000) : 0,
      eventLoopUtilization: utilization * 1000,
      eventLoopDelay: this.delay.count > 0 ? this.delay.mean / 1000 : 0,
      now,
      method: current?.method,
      uri: current?.url === undefined ? undefined : stripQuery(current.url),
      listen: [...this.listen.values()],
    });
  }

  /**
   * Writes this process's slot now (the timer does this every interval).
   * Resolves when done; a tick already running is joined, not queued.
   * Never rejects: failures are reported.
   */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    if (this.closing) return this.closing;
    this.ticking = this.write(false).finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  /**
   * Stops the timer, removes this process's slot from the file (its counters
   * kept for the next process in the slot) and resolves after that last write.
   * Safe to call more than once.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.accepting = false;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.removeExitHook();
      await this.statsServer?.close();
      await this.ticking;
      if (this.assignment !== null) await this.write(true);
      this.delay.disable();
    })();
    return this.closing;
  }

  /**
   * Starts the `stats` server (issue 5). Each client gets the status file as
   * it is now with this process's own entry fresh from memory, and the listen
   * queues measured at that moment. A listen failure is reported once; the
   * app keeps serving.
   */
  private startStatsServer(): void {
    const address = this.options.stats;
    if (address === null) return;
    let firstWrite: Promise<void> | null = null;
    const provider = createStatusFileProvider({
      path: this.path,
      staleAfterMs: this.options.staleAfter,
      identity: async () => {
        this.role ??= await detectProcessRole();
        return {
          version: `wsgi-status/${VERSION}`,
          pid: this.role.supervisorPid,
          uid: process.getuid?.() ?? 0,
          gid: process.getgid?.() ?? 0,
          cwd: process.cwd(),
        };
      },
      self: async () => {
        // Before the first (jittered) tick this process has no slot yet: take it now rather than answer without it.
        if (this.assignment === null && !this.closing) {
          firstWrite ??= this.tick();
          await firstWrite;
        }
        return { worker: this.snapshot(), assigned: this.assignment !== null };
      },
      onFileError: (error) => this.report('stats-file', error),
    });
    this.statsServer = new StatsServer({
      address,
      http: this.options.statsHttp,
      mode: this.options.statsMode,
      provider: coalesce(provider),
      ref: false,
      onError: (error) => this.report('stats-answer', error),
    });
    this.statsServer.listen().catch((error: NodeJS.ErrnoException) => this.report(`stats-${error.code ?? 'listen'}`, error));
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => {
      if (this.closing) return;
      this.schedule(this.options.interval);
      void this.tick();
    }, delay);
    this.timer.unref();
  }

  private end(res: ResponseLike, start: number): void {
    try {
      let failed = res.statusCode >= 500;
      // A COUNTED mark needs nothing here: it is only set on a response below 500 that has been sent.
      if (this.failuresPending > 0 && (res as ResponseLike & Record<symbol, unknown>)[this.failedKey] === PENDING) {
        this.failuresPending--;
        failed = true;
      }
      this.tracker.end(performance.now() - start, failed);
      if (this.current !== null && this.current === (res as { req?: RequestLike }).req) this.current = null;
      if (this.lastResponse === res) this.lastResponse = null;
    } catch (error) {
      this.report('request', error);
    }
  }

  private async write(remove: boolean): Promise<void> {
    try {
      this.role ??= await detectProcessRole();
      const { previous } = await this.file.update((parsed) => this.merge(parsed, remove), {
        cleanOrphans: this.ticks++ % ORPHAN_SWEEP_EVERY === 0,
        // Removing the slot is not retried by a later tick: wait out a busy or stale lock.
        final: remove,
      });
      if (previous.problem !== null) {
        this.report(`file-${previous.problem}`, new Error(describeProblem(previous.problem, this.path)));
      }
      if (this.document) this.emit('write', this.document);
    } catch (error) {
      this.reportFileError(error as NodeJS.ErrnoException);
    }
  }

  /** Prunes the gone, places (or removes) this process's slot, and renders the file. */
  private merge(parsed: ParsedStatus, remove: boolean): string {
    const now = Date.now();
    this.tracker.tx = this.ledger.total(); // reconcile() reads it as this process's own count
    const reconciled = reconcile(
      parsed,
      {
        pid: process.pid,
        preferredId: this.options.workerId ?? this.role?.preferredId ?? null,
        current: this.assignment,
        own: this.tracker,
      },
      {
        now,
        staleAfterMs: this.options.staleAfter,
        // Reading /proc for each worker was a fifth of a tick with 8 workers. A
        // worker whose entry is less than one and a half intervals old has
        // missed no write; one that died since is caught by kill(pid, 0) once
        // reaped, or by /proc as a zombie once it has missed a write: within
        // two and a half intervals of its death, inside the promised three.
        isAlive: (pid, silentMs) => isProcessAlive(pid, silentMs > 1.5 * this.options.interval),
      },
    );
    this.assignment = reconciled.assignment;
    const workers = reconciled.others;
    const self = this.entry(now);
    // Event-loop figures cover one interval each.
    this.eventLoop = performance.eventLoopUtilization();
    this.delay.reset();
    if (remove) reconciled.retired.set(self.id, retire(self, now));
    else workers.push(self);
    const addresses = workers.flatMap((worker) => worker.listen ?? []);
    const document = buildDocument(
      {
        version: `wsgi-status/${VERSION}`,
        queues: measureListenQueues(addresses),
        pid: this.role?.supervisorPid ?? process.pid,
        uid: process.getuid?.() ?? 0,
        gid: process.getgid?.() ?? 0,
        cwd: process.cwd(),
      },
      workers,
      [...reconciled.retired.values()],
    );
    this.document = document;
    return formatUwsgiJson(document);
  }

  /** At process exit: take this process's slot out of the file, synchronously. */
  private removeSlotSync(): void {
    if (this.assignment === null || this.closing) return;
    try {
      this.accepting = false;
      this.file.updateSync((parsed) => this.merge(parsed, true));
    } catch {
      // The lock is busy or the file unwritable: the others prune this pid once it is gone.
    }
  }

  private reportFileError(error: NodeJS.ErrnoException): void {
    const code = error?.code ?? 'UNKNOWN';
    // Lost to a takeover while our event loop was blocked: already reported through onCompromised.
    if (code === 'ECOMPROMISED') {
      this.report('lock-compromised', error);
      return;
    }
    if (code === 'ELOCKED') {
      this.report(
        'lock-busy',
        new Error(`wsgi-status: the lock ${this.file.lockPath} stayed busy; tick skipped`, { cause: error }),
      );
      return;
    }
    const wrapped = new Error(`wsgi-status: cannot update ${this.path}: ${error?.message ?? String(error)}`, { cause: error });
    (wrapped as NodeJS.ErrnoException).code = code;
    this.report(`file-${code}`, wrapped);
  }

  /** Reports a background failure once per kind. Never throws. */
  private report(kind: string, error: unknown): void {
    if (this.reported.has(kind)) return;
    this.reported.add(kind);
    const failure = error instanceof Error ? error : new Error(String(error));
    try {
      if (this.options.onError) this.options.onError(failure);
      else if (this.listenerCount('error') > 0) this.emit('error', failure);
      else process.emitWarning(failure.message, { code: 'WSGI_STATUS' });
    } catch {
      // A throwing onError must not take the app down either.
    }
  }
}

/** The path of a request URL, never its query string or fragment. */
export function stripQuery(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}
