/**
 * The slot ledger: which worker slot (uWSGI's `id`) each process is attached
 * to, what each slot carries from processes that are gone, and the `workers`
 * rows every writer and reader recomputes from it. Pure functions over a
 * parsed file.
 *
 * Why a ledger (issue 12): a `pm2 reload` starts the new process with the
 * same NODE_APP_INSTANCE while the old one still drains. When each process
 * wrote its slot's totals into its own row, the two fought over one row,
 * the old one moved to a spare slot and its last counts were lost. Here a
 * process only ever writes what it counted itself and never changes slot;
 * a slot's totals are its `base` (folded in from gone processes) plus the
 * own counters of every live process attached to it, so every writer
 * computes the same, monotonic totals, and nothing is counted twice.
 */
import { buildWorker, type ProcessEntry, type SlotRecord, type UwsgiWorker } from '../model/document.js';
import type { ParsedStatus } from '../model/parse.js';

/** Counters that belong to a slot and never go backwards. */
export interface SlotCounters {
  requests: number;
  exceptions: number;
  tx: number;
  runningTime: number;
}

/** The slot a process is attached to. */
export interface SlotAssignment {
  id: number;
  respawnCount: number;
  /**
   * The part of this process's own counters already folded into the slot's
   * base (it was pruned while alive, e.g. its event loop blocked past
   * `staleAfter`): its entry carries only what it counted since.
   */
  offset: SlotCounters;
}

/** Who is writing. */
export interface SlotClaimant {
  pid: number;
  /** The slot this process must have, e.g. PM2's `NODE_APP_INSTANCE + 1`; `null` for the lowest free one. */
  preferredId: number | null;
  /** The slot it is attached to, `null` before its first write. */
  current: SlotAssignment | null;
  /** Its entry as of now, with its own counters since it started (the slot `id` is set here). */
  entry: ProcessEntry;
  /** Its own counters as of its last successful write; `null` before one. */
  committed: SlotCounters | null;
  /** Its last write (it exits): its counters are folded into the slot's base. */
  leaving: boolean;
}

/** The new ledger and the rows it gives. */
export interface Reconciled {
  slots: SlotRecord[];
  processes: ProcessEntry[];
  workers: UwsgiWorker[];
  assignment: SlotAssignment;
}

/** What decides that a process entry is gone. */
export interface Liveness {
  /** Epoch milliseconds now. */
  now: number;
  /** An entry not refreshed for this long is gone even if its pid exists (pid reused, other namespace). */
  staleAfterMs: number;
  /**
   * How long a file with no live process keeps its slots: a process that
   * starts later (the app was stopped for longer) starts afresh, from id 1
   * and zero counters.
   * @default max(2 × staleAfterMs, 60000)
   */
  retainMs?: number;
  /** Whether the process with this pid is alive, given how long ago its entry was last written. */
  isAlive: (pid: number, silentMs: number) => boolean;
}

/** What a reader needs to leave dead processes out. */
export type ReaderLiveness = Omit<Liveness, 'retainMs' | 'staleAfterMs'> & { staleAfterMs?: number };

const ZERO: SlotCounters = { requests: 0, exceptions: 0, tx: 0, runningTime: 0 };

/** The lowest slot id (from 1) not in `taken`. */
export function lowestFreeId(taken: ReadonlySet<number>): number {
  let id = 1;
  while (taken.has(id)) id++;
  return id;
}

function newSlot(id: number, respawnCount: number): SlotRecord {
  return { id, pid: 0, respawn_count: respawnCount, requests: 0, exceptions: 0, tx: 0, running_time: 0, cheap_since: 0 };
}

/** Adds a gone process's last written counters to its slot's base. */
function fold(slots: Map<number, SlotRecord>, entry: ProcessEntry): void {
  let slot = slots.get(entry.id);
  if (slot === undefined) {
    slot = newSlot(entry.id, 1);
    slots.set(entry.id, slot);
  }
  slot.requests += entry.requests;
  slot.exceptions += entry.exceptions;
  slot.tx += entry.tx;
  slot.running_time += entry.running_time;
}

/** Splits the file's processes into the live ones and folds the gone ones into their slots. */
function prune(
  parsed: ParsedStatus,
  liveness: ReaderLiveness,
  mine: (entry: ProcessEntry) => 'mine' | 'gone' | 'other',
): { slots: Map<number, SlotRecord>; live: ProcessEntry[] } {
  const { now } = liveness;
  const slots = new Map(parsed.slots.map((slot) => [slot.id, { ...slot }]));
  const live: ProcessEntry[] = [];
  for (const entry of parsed.processes) {
    const whose = mine(entry);
    if (whose === 'mine') continue;
    const silentMs = now - entry.last_update;
    const stale = liveness.staleAfterMs !== undefined && silentMs > liveness.staleAfterMs;
    if (whose === 'gone' || stale || !liveness.isAlive(entry.pid, silentMs)) fold(slots, entry);
    else live.push(entry);
  }
  return { slots, live };
}

/** Live processes by the slot they are attached to. */
function bySlot(live: ProcessEntry[]): Map<number, ProcessEntry[]> {
  const groups = new Map<number, ProcessEntry[]>();
  for (const entry of live) {
    const group = groups.get(entry.id);
    if (group) group.push(entry);
    else groups.set(entry.id, [entry]);
  }
  return groups;
}

/** Each slot's owner (its newest live process unless the recorded one lives) and cheap time. */
function settle(slots: Map<number, SlotRecord>, live: ProcessEntry[], now: number): void {
  for (const entry of live) if (!slots.has(entry.id)) slots.set(entry.id, newSlot(entry.id, 1));
  const groups = bySlot(live);
  for (const slot of slots.values()) {
    const attached = groups.get(slot.id) ?? [];
    if (attached.length === 0) {
      slot.pid = 0;
      if (slot.cheap_since === 0) slot.cheap_since = now;
      continue;
    }
    slot.cheap_since = 0;
    if (!attached.some((entry) => entry.pid === slot.pid)) {
      slot.pid = attached.reduce((a, b) => (b.started_at > a.started_at ? b : a)).pid;
    }
  }
}

/**
 * The `workers` rows: one per slot, sorted by id. A slot with a live process
 * shows its owner with the slot's totals; one without shows uWSGI's `cheap`
 * row (pid 0, accepting 0) with its counters. An owner whose entry has
 * missed writes for 1.5 of its intervals is stuck (a long request or a
 * blocked event loop): `busy`, as uWSGI shows a worker stuck in a request.
 */
export function renderWorkers(slots: Iterable<SlotRecord>, live: ProcessEntry[], now: number): UwsgiWorker[] {
  const rows: UwsgiWorker[] = [];
  const groups = bySlot(live);
  for (const slot of [...slots].sort((a, b) => a.id - b.id)) {
    const attached = groups.get(slot.id) ?? [];
    const totals = { requests: slot.requests, exceptions: slot.exceptions, tx: slot.tx, runningTime: slot.running_time };
    for (const entry of attached) {
      totals.requests += entry.requests;
      totals.exceptions += entry.exceptions;
      totals.tx += entry.tx;
      totals.runningTime += entry.running_time;
    }
    const owner = attached.find((entry) => entry.pid === slot.pid) ?? null;
    const stuck = owner !== null && now - owner.last_update > 1.5 * owner.interval;
    const inFlight = owner?.in_flight ?? 0;
    // One object literal with every field, not spreads: a tick renders every row.
    // A slot no process serves (no owner) is uWSGI's cheap row: its counters, zeros elsewhere.
    rows.push(
      buildWorker({
        id: slot.id,
        respawnCount: slot.respawn_count,
        requests: totals.requests,
        exceptions: totals.exceptions,
        tx: totals.tx,
        runningTime: totals.runningTime,
        pid: owner?.pid ?? 0,
        accepting: owner?.accepting === 1,
        deltaRequests: owner?.requests ?? 0,
        inFlight: stuck ? Math.max(1, inFlight) : inFlight,
        rss: owner?.rss ?? 0,
        vsz: owner?.vsz ?? 0,
        heapUsed: owner?.heap_used ?? 0,
        lastSpawn: owner?.last_spawn ?? 0,
        avgRt: owner?.avg_rt ?? 0,
        requestStart: owner?.request_start ?? 0,
        eventLoopUtilization: owner?.event_loop_utilization ?? 0,
        eventLoopDelay: owner?.event_loop_delay ?? 0,
        now: owner?.last_update ?? slot.cheap_since,
        method: owner?.method,
        uri: owner?.uri,
        listen: owner?.listen ?? [],
        status: owner === null ? 'cheap' : stuck ? 'busy' : undefined,
      }),
    );
  }
  return rows;
}

/**
 * What a reader (the stats server, the sidecar, `show`) shows: the file's
 * rows recomputed with the processes that are gone now left out as owners
 * (their last written counts stay in their slots' totals, as the next
 * writer will fold them). Pure.
 */
export function viewLedger(parsed: ParsedStatus, liveness: ReaderLiveness): { workers: UwsgiWorker[]; live: ProcessEntry[] } {
  const { slots, live } = prune(parsed, liveness, () => 'other');
  settle(slots, live, liveness.now);
  return { workers: renderWorkers(slots.values(), live, liveness.now), live };
}

/**
 * One writer's merge: prunes the gone (folding their last written counters
 * into their slots), attaches the claimant to its slot (its current one,
 * else its preferred one, else the lowest id no live process holds; taking a
 * slot that had a process before adds 1 to `respawn_count`, once), or folds
 * it in when it leaves, and renders the rows.
 */
export function reconcile(parsed: ParsedStatus, claimant: SlotClaimant, liveness: Liveness): Reconciled {
  const { now } = liveness;
  const current = claimant.current;
  let listed = false;
  const { slots, live } = prune(parsed, liveness, (entry) => {
    if (entry.pid !== claimant.pid) return 'other';
    // Our pid but not our slot (or before our first write): a predecessor whose pid we reused.
    if (current === null || entry.id !== current.id) return 'gone';
    listed = true;
    return 'mine';
  });

  // A file nobody has written for the retention is from an earlier life of the app: start afresh.
  const retainMs = liveness.retainMs ?? Math.max(2 * liveness.staleAfterMs, 60_000);
  if (live.length === 0 && !listed) {
    let lastSign = 0;
    for (const slot of slots.values()) lastSign = Math.max(lastSign, slot.cheap_since);
    for (const entry of parsed.processes) lastSign = Math.max(lastSign, entry.last_update);
    if (now - lastSign > retainMs) slots.clear();
  }

  let assignment: SlotAssignment;
  let slot: SlotRecord | undefined;
  if (current !== null) {
    slot = slots.get(current.id);
    let offset = current.offset;
    if (slot === undefined) {
      // The file was replaced (corrupt, deleted): the slot starts again from what we count.
      slot = newSlot(current.id, current.respawnCount);
      slots.set(slot.id, slot);
      offset = ZERO;
    } else if (!listed && claimant.committed !== null) {
      // Pruned while alive: what we had written is in the base now; count on from there.
      offset = claimant.committed;
    }
    assignment = { id: current.id, respawnCount: slot.respawn_count, offset };
  } else {
    const id = claimant.preferredId ?? lowestFreeId(new Set(live.map((entry) => entry.id)));
    slot = slots.get(id);
    if (slot === undefined) {
      slot = newSlot(id, 1);
      slots.set(id, slot);
    } else {
      // A replacement (of a draining, dead or cheap predecessor): once, at the first write.
      slot.respawn_count += 1;
    }
    // The new process owns the slot's row from its first write.
    slot.pid = claimant.pid;
    assignment = { id, respawnCount: slot.respawn_count, offset: ZERO };
  }

  const { offset } = assignment;
  const entry: ProcessEntry = {
    ...claimant.entry,
    id: assignment.id,
    requests: Math.max(0, claimant.entry.requests - offset.requests),
    exceptions: Math.max(0, claimant.entry.exceptions - offset.exceptions),
    tx: Math.max(0, claimant.entry.tx - offset.tx),
    running_time: Math.max(0, claimant.entry.running_time - offset.runningTime),
  };
  if (claimant.leaving) fold(slots, entry);
  else live.push(entry);
  settle(slots, live, now);
  return { slots: [...slots.values()], processes: live, workers: renderWorkers(slots.values(), live, now), assignment };
}
