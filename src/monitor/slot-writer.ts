/**
 * The slot writer: every interval, this process's slot of the shared status
 * file is rewritten from memory under the lock (read, prune the gone, place
 * our entry, render, write atomically). Also the last write at close and at
 * exit, and the event-loop figures, which cover one interval each.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { onExit } from 'signal-exit';
import {
  buildDocument,
  type ListenAddress,
  type ListenQueueReading,
  type ProcessEntry,
  type UwsgiDocument,
  type UwsgiWorker,
} from '../model/document.js';
import { formatUwsgiJson } from '../model/format.js';
import type { ParsedStatus } from '../model/parse.js';
import type { ResolvedOptions } from '../options.js';
import { reconcile, renderWorkers, type SlotAssignment, type SlotCounters } from '../store/slots.js';
import { describeProblem, StatusFile } from '../store/status-file.js';
import { isProcessAlive } from '../system/liveness.js';
import { readMemorySize } from '../system/proc.js';
import { detectProcessRole, type ProcessRole, processIdentity } from '../system/process-role.js';
import { ListenQueueSampler } from './listen-queues.js';
import { LoopDelaySampler } from './loop-delay.js';
import type { Reporter } from './reporter.js';
import type { RequestPath } from './request-path.js';

// Run the orphaned-temp-file sweep on the first tick and every tenth after.
const ORPHAN_SWEEP_EVERY = 10;
// The event-loop delay is sampled by a timer (loop-delay.ts), ten samples per
// interval, between one every 20 ms and one every 100 ms: each wakes the loop,
// paid per second, not per request (at 50 a second they outweighed the
// request path under callgrind).
const MIN_DELAY_RESOLUTION_MS = 20;
const MAX_DELAY_RESOLUTION_MS = 100;
// Sample the delay through an interval only when the loop ran for at least
// this long (ms) in the one before. A timer fires late only while the loop
// runs, so below it no timer was late by as much as a stall (listen-queues.ts,
// 10 ms), and an idle process, whose tick runs for 2-5 ms, pays no wakeups.
// After an idle interval, and through the first, the tick's own timer, late
// or not, is the interval's one sample.
const SAMPLE_DELAY_FROM_ACTIVE_MS = 10;

export class SlotWriter {
  /** 1 in this process's entry while it serves; 0 once it is shutting down. */
  accepting = true;
  private readonly options: Readonly<ResolvedOptions>;
  private readonly requests: RequestPath;
  private readonly reporter: Reporter;
  private readonly onWrite: (document: UwsgiDocument) => void;
  private readonly file: StatusFile;
  private assignment: SlotAssignment | null = null;
  /** Own counters as of the last write that reached the file (what others fold in if we vanish from it). */
  private committed: SlotCounters | null = null;
  /** Own counters in the write under way, committed once it succeeds. */
  private pending: SlotCounters | null = null;
  /** The slot's totals at the last write minus our own entry's: what the other processes of our slot contributed. */
  private slotRest: SlotCounters = { requests: 0, exceptions: 0, tx: 0, runningTime: 0 };
  private role: ProcessRole | null = null;
  private document: UwsgiDocument | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private ticks = 0;
  /** The exit hook has taken the slot out: nothing may put it back. */
  private exited = false;
  private eventLoop = performance.eventLoopUtilization();
  private readonly delay: LoopDelaySampler;
  private readonly listenQueues = new ListenQueueSampler();
  /** When the timer's tick is due, and how late the last one fired (ms, performance.now()). */
  private dueAt = 0;
  private lateMs = 0;
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
    // Off until a tick finds the loop active (SAMPLE_DELAY_FROM_ACTIVE_MS).
    this.delay = new LoopDelaySampler(
      Math.min(MAX_DELAY_RESOLUTION_MS, Math.max(MIN_DELAY_RESOLUTION_MS, Math.round(interval / 10))),
    );
    // A clean exit, or death by a signal the app does not handle, detaches the
    // process at once (its final counts folded into its slot): signal-exit then re-raises the signal, so the process dies
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

  /**
   * This process's row as of now: its slot's totals as of the last write,
   * with its own counters from memory.
   */
  snapshot(now = Date.now()): UwsgiWorker {
    this.requests.tracker.tx = this.requests.ledger.total();
    const entry = this.entry(now);
    const rest = this.slotRest;
    const offset = this.assignment?.offset;
    const slot = {
      id: entry.id,
      pid: process.pid,
      respawn_count: this.assignment?.respawnCount ?? 1,
      requests: rest.requests - (offset?.requests ?? 0),
      exceptions: rest.exceptions - (offset?.exceptions ?? 0),
      tx: rest.tx - (offset?.tx ?? 0),
      running_time: rest.runningTime - (offset?.runningTime ?? 0),
      cheap_since: 0,
    };
    return renderWorkers([slot], [entry], now)[0];
  }

  /** Writes this process's slot now; a tick already running is joined, not queued. Never rejects. */
  tick(): Promise<void> {
    if (this.exited) return Promise.resolve();
    if (this.ticking) return this.ticking;
    if (this.closing) return this.closing;
    this.ticking = this.write(false).finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  /** Stops the timer and, once a running tick is done, detaches this process from its slot (its counts kept there). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.accepting = false;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.removeExitHook();
      await this.ticking;
      if (this.assignment !== null) await this.write(true);
      this.delay.stop();
    })();
    return this.closing;
  }

  private schedule(delay: number): void {
    this.dueAt = performance.now() + delay;
    this.timer = setTimeout(() => {
      if (this.closing) return;
      // Node's timers run on the loop's millisecond clock: one can fire a fraction early by this one.
      this.lateMs = Math.max(0, performance.now() - this.dueAt);
      this.schedule(this.options.interval);
      void this.tick();
    }, delay);
    this.timer.unref();
  }

  /** This process's ledger entry: its own counters since it started, with `tx` as last counted. */
  private entry(now: number, loop = performance.eventLoopUtilization(this.eventLoop)): ProcessEntry {
    const tracker = this.requests.tracker;
    const current = this.requests.currentRequest();
    const memory = readMemorySize();
    const busy = tracker.inFlight > 0;
    const entry: ProcessEntry = {
      pid: process.pid,
      id: this.assignment?.id ?? 1,
      accepting: this.accepting ? 1 : 0,
      requests: tracker.requests,
      exceptions: tracker.exceptions,
      tx: tracker.tx,
      running_time: Math.round(tracker.runningTime),
      in_flight: tracker.inFlight,
      avg_rt: Math.round(tracker.avgRt),
      rss: memory.rss,
      vsz: memory.vsz,
      heap_used: getHeapStatistics().used_heap_size,
      event_loop_utilization: Math.round(loop.utilization * 1000),
      event_loop_delay: Math.round((this.delay.samples > 0 ? this.delay.meanMs : this.lateMs) * 1000),
      last_spawn: Math.floor(performance.timeOrigin / 1000),
      started_at: Math.floor(performance.timeOrigin),
      last_update: now,
      interval: this.options.interval,
      request_start: busy ? Math.floor((performance.timeOrigin + tracker.lastBeginAt) / 1000) : 0,
      listen: [...this.requests.listen.values()],
    };
    if (busy && current?.method !== undefined) entry.method = current.method;
    if (busy && current?.uri !== undefined) entry.uri = current.uri;
    return entry;
  }

  private async write(remove: boolean): Promise<void> {
    try {
      this.role ??= await detectProcessRole();
      const { previous } = await this.file.update((parsed) => this.merge(parsed, remove), {
        cleanOrphans: this.ticks++ % ORPHAN_SWEEP_EVERY === 0,
        // Removing the slot is not retried by a later tick: wait out a busy or stale lock.
        final: remove,
      });
      this.committed = this.pending;
      // Written: whatever kept the file from being written is over. A bad
      // file's episode ends with the first clean read, not with the repair.
      this.reporter.clear('lock-*', 'file-*');
      if (previous.problem === null) this.reporter.clear('content-*');
      if (previous.problem !== null) {
        this.reporter.report(`content-${previous.problem}`, new Error(describeProblem(previous.problem, this.options.path)));
      }
      if (this.document) this.onWrite(this.document);
    } catch (error) {
      this.reportFileError(error as NodeJS.ErrnoException);
    }
  }

  /**
   * Prunes the gone, attaches this process to its slot (or folds it in when
   * it leaves), and renders the file: the ledger and the rows it gives.
   */
  private merge(parsed: ParsedStatus, remove: boolean): string {
    // A tick already under way when the exit hook ran must not write our entry back:
    // the process lives on for a moment after signal-exit re-raises the signal.
    remove ||= this.exited;
    const now = Date.now();
    this.requests.tracker.tx = this.requests.ledger.total();
    // The event loop over this interval: for the entry, and for whether to sample its delay through the next.
    const utilization = performance.eventLoopUtilization(this.eventLoop);
    const entry = this.entry(now, utilization);
    const reconciled = reconcile(
      parsed,
      {
        pid: process.pid,
        preferredId: this.options.workerId ?? this.role?.preferredId ?? null,
        current: this.assignment,
        entry,
        committed: this.committed,
        leaving: remove,
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
    this.pending = { requests: entry.requests, exceptions: entry.exceptions, tx: entry.tx, runningTime: entry.running_time };
    const row = reconciled.workers.find((worker) => worker.id === reconciled.assignment.id);
    if (row !== undefined) {
      const offset = reconciled.assignment.offset;
      this.slotRest = {
        requests: row.requests - (entry.requests - offset.requests),
        exceptions: row.exceptions - (entry.exceptions - offset.exceptions),
        tx: row.tx - (entry.tx - offset.tx),
        runningTime: row.running_time - (entry.running_time - offset.runningTime),
      };
    }
    // The group's addresses, and its quiet listen-queue readings, shared through the entries (listen-queues.ts).
    const addresses: ListenAddress[] = [];
    const others: ListenQueueReading[] = [];
    let own: ProcessEntry | undefined;
    for (const live of reconciled.processes) {
      if (live.listen !== undefined) addresses.push(...live.listen);
      if (live.pid === process.pid) own = live;
      else if (live.listen_queues !== undefined) others.push(live.listen_queues);
    }
    const loop = {
      utilization: entry.event_loop_utilization / 1000,
      stallMs: this.delay.longestMs,
      lateMs: this.lateMs,
    };
    const queues = this.listenQueues.sample(addresses, loop, others, now);
    const reading = this.listenQueues.reading(others);
    if (own !== undefined && reading !== null) own.listen_queues = reading;
    this.lateMs = 0;
    // Event-loop figures cover one interval each.
    this.eventLoop = performance.eventLoopUtilization();
    this.delay.reset();
    this.delay.setActive(utilization.active >= SAMPLE_DELAY_FROM_ACTIVE_MS && !remove);
    const document = buildDocument({ ...processIdentity(this.role), queues }, reconciled.workers, reconciled);
    this.document = document;
    return formatUwsgiJson(document);
  }

  /** At process exit: detach this process from its slot, synchronously. */
  private removeSlotSync(): void {
    if (this.assignment === null || this.closing) return;
    this.exited = true;
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
