/**
 * The slot writer: every interval, this process's slot of the shared status
 * file is rewritten from memory under the lock (read, prune the gone, place
 * our entry, render, write atomically). Also the last write at close and at
 * exit, and the event-loop figures, which cover one interval each.
 */
import { type IntervalHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { onExit } from 'signal-exit';
import { buildDocument, buildWorker, type UwsgiDocument, type UwsgiWorker } from '../model/document.js';
import { formatUwsgiJson } from '../model/format.js';
import type { ParsedStatus } from '../model/parse.js';
import type { ResolvedOptions } from '../options.js';
import { reconcile, retire, type SlotAssignment } from '../store/slots.js';
import { StatusFile } from '../store/status-file.js';
import { isProcessAlive } from '../system/liveness.js';
import { measureListenQueues, readMemorySize } from '../system/proc.js';
import { detectProcessRole, type ProcessRole, processIdentity } from '../system/process-role.js';
import type { Reporter } from './reporter.js';
import type { RequestPath } from './request-path.js';

// Run the orphaned-temp-file sweep on the first tick and every tenth after.
const ORPHAN_SWEEP_EVERY = 10;

export class SlotWriter {
  /** 1 in this process's entry while it serves; 0 once it is shutting down. */
  accepting = true;
  private readonly options: Readonly<ResolvedOptions>;
  private readonly requests: RequestPath;
  private readonly reporter: Reporter;
  private readonly onWrite: (document: UwsgiDocument) => void;
  private readonly file: StatusFile;
  private assignment: SlotAssignment | null = null;
  private role: ProcessRole | null = null;
  private document: UwsgiDocument | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private ticks = 0;
  private eventLoop = performance.eventLoopUtilization();
  private readonly delay: IntervalHistogram;
  private readonly removeExitHook: () => void;

  constructor(
    options: Readonly<ResolvedOptions>,
    requests: RequestPath,
    reporter: Reporter,
    onWrite: (document: UwsgiDocument) => void,
  ) {
    this.options = options;
    this.requests = requests;
    this.reporter = reporter;
    this.onWrite = onWrite;
    const interval = options.interval;
    this.file = new StatusFile(options.path, {
      mode: options.mode,
      lock: {
        staleMs: Math.min(5000, Math.max(2000, 2 * interval)),
        waitMs: Math.max(5, Math.min(interval, 1000) - 5),
        onCompromised: (error) => reporter.report('lock-compromised', error),
      },
    });
    // Ten samples of the event-loop delay per interval (every 100 ms at the
    // default 1 s; never more often than every 20 ms, as before): each sample
    // wakes the loop, about 4,000 instructions paid per second rather than per
    // request, and at 50 a second they outweighed the request path under
    // callgrind (`npm run bench:instructions`).
    this.delay = monitorEventLoopDelay({ resolution: Math.max(20, Math.round(interval / 10)) });
    this.delay.enable();
    // A clean exit, or death by a signal the app does not handle, removes the
    // slot at once: signal-exit then re-raises the signal, so the process dies
    // the way it would have. A crash or kill -9 leaves it to the others' pruning.
    this.removeExitHook = onExit(() => this.removeSlotSync());
    // Jitter the first tick so workers forked together do not collide on the lock.
    this.schedule(Math.floor(Math.random() * interval));
  }

  /** The slot this process holds, once its first tick has run. */
  get slot(): SlotAssignment | null {
    return this.assignment;
  }

  /** The document this process wrote last. */
  get lastDocument(): UwsgiDocument | null {
    return this.document;
  }

  /** The document's top level for this process (its role detected once). */
  async identity(): Promise<ReturnType<typeof processIdentity>> {
    this.role ??= await detectProcessRole();
    return processIdentity(this.role);
  }

  /** This process's worker entry as of now, from memory. */
  snapshot(now = Date.now()): UwsgiWorker {
    this.requests.tracker.tx = this.requests.ledger.total();
    return this.entry(now);
  }

  /** Writes this process's slot now; a tick already running is joined, not queued. Never rejects. */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    if (this.closing) return this.closing;
    this.ticking = this.write(false).finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  /** Stops the timer and, once a running tick is done, removes this process's slot (its counters kept). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.accepting = false;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.removeExitHook();
      await this.ticking;
      if (this.assignment !== null) await this.write(true);
      this.delay.disable();
    })();
    return this.closing;
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => {
      if (this.closing) return;
      this.schedule(this.options.interval);
      void this.tick();
    }, delay);
    this.timer.unref();
  }

  /** This process's worker entry, with `tx` as last counted. */
  private entry(now: number): UwsgiWorker {
    const tracker = this.requests.tracker;
    const assignment = this.assignment;
    const base = assignment?.base;
    const current = this.requests.currentRequest();
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
      eventLoopUtilization: performance.eventLoopUtilization(this.eventLoop).utilization * 1000,
      eventLoopDelay: this.delay.count > 0 ? this.delay.mean / 1000 : 0,
      now,
      method: current?.method,
      uri: current?.uri,
      listen: [...this.requests.listen.values()],
    });
  }

  private async write(remove: boolean): Promise<void> {
    try {
      this.role ??= await detectProcessRole();
      const { previous } = await this.file.update((parsed) => this.merge(parsed, remove), {
        cleanOrphans: this.ticks++ % ORPHAN_SWEEP_EVERY === 0,
        // Removing the slot is not retried by a later tick: wait out a busy or stale lock.
        final: remove,
      });
      // Written: whatever kept the file from being written is over. A bad
      // file's episode ends with the first clean read, not with the repair.
      this.reporter.clear('lock-*', 'file-*');
      if (previous.problem === null) this.reporter.clear('content-*');
      const path = this.options.path;
      if (previous.problem === 'corrupt') {
        this.reporter.report('content-corrupt', new Error(`wsgi-status: ${path} held invalid JSON; it was replaced`));
      } else if (previous.problem === 'foreign') {
        this.reporter.report(
          'content-foreign',
          new Error(`wsgi-status: ${path} held entries this library did not write; they were dropped`),
        );
      }
      if (this.document) this.onWrite(this.document);
    } catch (error) {
      this.reportFileError(error as NodeJS.ErrnoException);
    }
  }

  /** Prunes the gone, places (or removes) this process's slot, and renders the file. */
  private merge(parsed: ParsedStatus, remove: boolean): string {
    const now = Date.now();
    this.requests.tracker.tx = this.requests.ledger.total(); // reconcile() reads it as this process's own count
    const reconciled = reconcile(
      parsed,
      {
        pid: process.pid,
        preferredId: this.options.workerId ?? this.role?.preferredId ?? null,
        current: this.assignment,
        own: this.requests.tracker,
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
    const document = buildDocument({ ...processIdentity(this.role), queues: measureListenQueues(addresses) }, workers, [
      ...reconciled.retired.values(),
    ]);
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
      this.reporter.report('lock-compromised', error);
      return;
    }
    if (code === 'ELOCKED') {
      this.reporter.report(
        'lock-busy',
        new Error(`wsgi-status: the lock ${this.file.lockPath} stayed busy; tick skipped`, { cause: error }),
      );
      return;
    }
    const wrapped = new Error(`wsgi-status: cannot update ${this.options.path}: ${error?.message ?? String(error)}`, {
      cause: error,
    });
    (wrapped as NodeJS.ErrnoException).code = code;
    this.reporter.report(`file-${code}`, wrapped);
  }
}
