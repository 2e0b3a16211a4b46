/**
 * The invariants of issue 12, checked on every read of the status file by a
 * poller that reads it every 100 ms without a lock, as a monitoring tool does:
 *
 * 1. each read: valid JSON, each `id` at most once, each live pid at most
 *    once, every number a non-negative integer;
 * 2. across reads, per `id`: `requests`, `exceptions`, `tx`, `running_time`
 *    never decrease; the sum of `requests` never decreases;
 * 3. an `id` once listed stays listed (it may turn `cheap`); a process never
 *    shows under two ids, nor again under its id once a successor showed there;
 * 5. `respawn_count` of an id grows by exactly one per new process shown in it.
 *
 * 4 (exact totals) and 6 (the settled rows) are checked by the tests at the end.
 */
import { readFileSync } from 'node:fs';
import type { UwsgiDocument, UwsgiWorker } from '../../src/model/document.ts';

const COUNTERS = ['requests', 'exceptions', 'tx', 'running_time'] as const;

/** The first non-integer or negative number in `value`, as a JSON path; `null` when there is none. */
function badNumber(value: unknown, path = '$'): string | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? null : `${path} = ${value}`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = badNumber(value[i], `${path}[${i}]`);
      if (bad) return bad;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const bad = badNumber(item, `${path}.${key}`);
      if (bad) return bad;
    }
  }
  return null;
}

interface SlotHistory {
  last: UwsgiWorker;
  /** respawn_count when first seen, and whether a process was shown then. */
  firstRespawn: number;
  firstHadProcess: boolean;
  /** Processes shown in this slot, in order. */
  pids: number[];
}

/** What the poller saw. */
export interface InvariantReport {
  reads: number;
  /** Reads that found no file (before the first write). */
  missing: number;
  /** The first violations (at most 20), each with the read's time. */
  violations: string[];
  /** Largest sum of `requests` over `workers` seen. */
  maxSum: number;
  /** The last document read. */
  last: UwsgiDocument | null;
  /** Per pid, the largest `delta_requests` shown for it (what it had written, as far as a reader saw). */
  deltaByPid: Map<number, number>;
}

/** Checks invariants 1, 2, 3 and 5 on every read of `path`, every `everyMs`. */
export class InvariantPoller {
  readonly report: InvariantReport = {
    reads: 0,
    missing: 0,
    violations: [],
    maxSum: 0,
    last: null,
    deltaByPid: new Map(),
  };
  private readonly slots = new Map<number, SlotHistory>();
  /** Every pid shown, with its id. */
  private readonly idOfPid = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();

  constructor(
    private readonly path: string,
    everyMs = 100,
  ) {
    this.timer = setInterval(() => this.read(), everyMs);
  }

  /** One read now (also what the timer does). */
  read(): UwsgiDocument | null {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      this.report.missing++;
      return null;
    }
    this.report.reads++;
    let document: UwsgiDocument;
    try {
      document = JSON.parse(text) as UwsgiDocument;
    } catch {
      this.violate(`invalid JSON (${text.length} bytes)`);
      return null;
    }
    this.check(document);
    this.report.last = document;
    return document;
  }

  stop(): InvariantReport {
    clearInterval(this.timer);
    this.read();
    return this.report;
  }

  private violate(what: string): void {
    if (this.report.violations.length < 20) this.report.violations.push(`+${Date.now() - this.started} ms: ${what}`);
  }

  private check(document: UwsgiDocument): void {
    if (!Array.isArray(document.workers)) {
      this.violate('no workers array');
      return;
    }
    // 1.
    const bad = badNumber(document);
    if (bad) this.violate(`not a non-negative integer: ${bad}`);
    const ids = document.workers.map((w) => w.id);
    if (new Set(ids).size !== ids.length) this.violate(`an id listed twice: ${ids}`);
    const pids = document.workers.map((w) => w.pid).filter((pid) => pid !== 0);
    if (new Set(pids).size !== pids.length) this.violate(`a pid listed twice: ${pids}`);
    // 2.
    const sum = document.workers.reduce((total, w) => total + w.requests, 0);
    if (sum < this.report.maxSum) this.violate(`the sum of requests dropped: ${this.report.maxSum} -> ${sum}`);
    this.report.maxSum = Math.max(this.report.maxSum, sum);
    // 3.
    const listed = new Set(ids);
    for (const id of this.slots.keys()) if (!listed.has(id)) this.violate(`id ${id} disappeared`);
    for (const worker of document.workers) {
      if (worker.pid !== 0) {
        const delta = this.report.deltaByPid.get(worker.pid) ?? 0;
        this.report.deltaByPid.set(worker.pid, Math.max(delta, worker.delta_requests));
        const idBefore = this.idOfPid.get(worker.pid);
        if (idBefore !== undefined && idBefore !== worker.id)
          this.violate(`pid ${worker.pid} moved from id ${idBefore} to ${worker.id}`);
        this.idOfPid.set(worker.pid, worker.id);
      }
      const history = this.slots.get(worker.id);
      if (history === undefined) {
        this.slots.set(worker.id, {
          last: worker,
          firstRespawn: worker.respawn_count,
          firstHadProcess: worker.pid !== 0,
          pids: worker.pid === 0 ? [] : [worker.pid],
        });
        continue;
      }
      for (const key of COUNTERS) {
        if (worker[key] < history.last[key])
          this.violate(`id ${worker.id}: ${key} went back ${history.last[key]} -> ${worker[key]}`);
      }
      if (worker.pid !== 0 && history.pids.at(-1) !== worker.pid) {
        if (history.pids.includes(worker.pid)) this.violate(`id ${worker.id}: pid ${worker.pid} took its slot back`);
        else history.pids.push(worker.pid);
      }
      // 5.
      const expected = history.firstRespawn + history.pids.length - (history.firstHadProcess ? 1 : 0);
      if (worker.respawn_count !== expected) {
        this.violate(
          `id ${worker.id}: respawn_count ${worker.respawn_count}, expected ${expected} (processes shown: ${history.pids})`,
        );
      }
      history.last = worker;
    }
  }
}

/** Sum of `requests` over the document's workers. */
export function sumRequests(document: UwsgiDocument): number {
  return document.workers.reduce((total, worker) => total + worker.requests, 0);
}

/** The rows that show a process (not `cheap`), as `[id, pid]`, sorted by id. */
export function liveRows(document: UwsgiDocument): Array<[number, number]> {
  return document.workers.filter((w) => w.status !== 'cheap').map((w) => [w.id, w.pid]);
}
