/**
 * Which worker slot (uWSGI's `id`) a process owns, and what a slot carries
 * from the process that held it before. Pure functions over a parsed file.
 */
import type { RetiredSlot, UwsgiWorker } from '../model/document.js';
import type { ParsedStatus } from '../model/parse.js';

/** Counters that belong to a slot, not to a process: they never go backwards when a worker restarts. */
export interface SlotCounters {
  requests: number;
  exceptions: number;
  tx: number;
  runningTime: number;
}

/** The slot a process holds and what it inherited with it. */
export interface SlotAssignment {
  id: number;
  respawnCount: number;
  /** Counters of earlier processes in this slot; the slot's totals are these plus this process's own. */
  base: SlotCounters;
}

/** Who is asking for a slot. */
export interface SlotClaimant {
  pid: number;
  /** The slot this process must have, e.g. PM2's `NODE_APP_INSTANCE + 1`; `null` for the lowest free one. */
  preferredId: number | null;
  /** The slot it already holds, if any. */
  current: SlotAssignment | null;
  /**
   * What this process itself has counted so far (its tracker). Only used when
   * a process that already held a slot must move to another one: its past
   * counts stay with the old slot, so the new one starts from here.
   * @default zero
   */
  own?: SlotCounters;
}

/** The state of the other workers after pruning, and this process's slot. */
export interface Reconciled {
  /** Live workers other than the claimant. */
  others: UwsgiWorker[];
  /** Counters of slots whose process is gone, by id. */
  retired: Map<number, RetiredSlot>;
  assignment: SlotAssignment;
}

/** What decides that a worker entry is gone. */
export interface Liveness {
  /** Epoch milliseconds now. */
  now: number;
  /** An entry not refreshed for this long is dropped even if its pid exists. */
  staleAfterMs: number;
  /**
   * How long a gone slot's counters wait for a process to take the slot over.
   * Older ones (say, from a previous deployment) are dropped, not inherited.
   * @default max(2 × staleAfterMs, 60000)
   */
  retainRetiredMs?: number;
  /**
   * Whether the process with this pid is alive, given how long ago its
   * entry was last written (a live writer refreshes it every interval).
   */
  isAlive: (pid: number, silentMs: number) => boolean;
}

const ZERO: SlotCounters = { requests: 0, exceptions: 0, tx: 0, runningTime: 0 };

/** What a worker entry leaves behind for the next process in its slot. */
export function retire(worker: UwsgiWorker, now: number): RetiredSlot {
  return {
    id: worker.id,
    pid: worker.pid,
    respawn_count: worker.respawn_count,
    requests: worker.requests,
    exceptions: worker.exceptions,
    tx: worker.tx,
    running_time: worker.running_time,
    retired_at: now,
  };
}

/** The lowest slot id (from 1) not in `taken`. */
export function lowestFreeId(taken: ReadonlySet<number>): number {
  let id = 1;
  while (taken.has(id)) id++;
  return id;
}

/**
 * Drops workers that are gone (their counters retired for reuse), and finds
 * the claimant's slot: the one it holds, else its preferred one, else the
 * lowest free id. Taking over a slot adds 1 to `respawn_count` and inherits
 * the slot's counters, as uWSGI does when it respawns a worker.
 */
export function reconcile(parsed: ParsedStatus, claimant: SlotClaimant, liveness: Liveness): Reconciled {
  const { now } = liveness;
  const retainMs = liveness.retainRetiredMs ?? Math.max(2 * liveness.staleAfterMs, 60_000);
  const retired = new Map<number, RetiredSlot>();
  for (const slot of parsed.retired) if (now - slot.retired_at <= retainMs) retired.set(slot.id, slot);
  let others: UwsgiWorker[] = [];
  for (const worker of parsed.workers) {
    const gone =
      worker.pid === claimant.pid
        ? claimant.current === null // our pid, but not ours: a predecessor whose pid we reused
        : now - worker.last_update > liveness.staleAfterMs || !liveness.isAlive(worker.pid, now - worker.last_update);
    if (worker.pid === claimant.pid && !gone) continue;
    if (!gone) others.push(worker);
    // A slot silent for longer than the retention is from an earlier life: nothing to carry.
    else if (now - worker.last_update <= retainMs) retired.set(worker.id, retire(worker, now));
  }

  const taken = new Set(others.map((worker) => worker.id));
  const current = claimant.current;
  if (current !== null && !taken.has(current.id)) {
    // Whatever was retired under our id (we were thought gone) is ours already.
    retired.delete(current.id);
    return { others, retired, assignment: current };
  }

  let id: number;
  if (claimant.preferredId !== null && current?.id !== claimant.preferredId) {
    id = claimant.preferredId;
    // The slot is ours by the process manager's word: whoever sits in it is a predecessor.
    for (const worker of others) if (worker.id === id) retired.set(id, retire(worker, liveness.now));
    others = others.filter((worker) => worker.id !== id);
  } else {
    id = lowestFreeId(taken);
  }
  const inherited = retired.get(id);
  retired.delete(id);
  const base: SlotCounters = inherited
    ? { requests: inherited.requests, exceptions: inherited.exceptions, tx: inherited.tx, runningTime: inherited.running_time }
    : { ...ZERO };
  if (current !== null) {
    // Moving (our slot went to a successor, e.g. a PM2 reload): what we counted
    // so far stays with the old slot; counting it again here would make the
    // sum of `requests` jump. The offset keeps base + own at the new slot's total.
    const own = claimant.own ?? ZERO;
    base.requests -= own.requests;
    base.exceptions -= own.exceptions;
    base.tx -= own.tx;
    base.runningTime -= own.runningTime;
  }
  const assignment: SlotAssignment = { id, respawnCount: inherited ? inherited.respawn_count + 1 : 1, base };
  return { others, retired, assignment };
}
