/**
 * The slot ledger, pure: which slot a process is attached to, what a slot
 * carries, which processes are pruned, and the rows every writer and reader
 * recomputes. The real-process side is in cluster.test.ts and pm2.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { buildDocument, type ProcessEntry, type SlotRecord, type UwsgiWorker } from '../src/model/document.ts';
import { formatUwsgiJson } from '../src/model/format.ts';
import { type ParsedStatus, parseStatus } from '../src/model/parse.ts';
import { WsgiStatusMonitor } from '../src/monitor.ts';
import {
  type Liveness,
  type Reconciled,
  reconcile,
  type SlotAssignment,
  type SlotClaimant,
  type SlotCounters,
  viewLedger,
} from '../src/store/slots.ts';
import { isProcessAlive } from '../src/system/liveness.ts';
import { readStatus, sleep, tempDir } from './support/helpers.ts';

const NOW = 1_800_000_000_000;
const STALE = 10_000;
const INTERVAL = 1000;
const ME = 4242;
const ZERO: SlotCounters = { requests: 0, exceptions: 0, tx: 0, runningTime: 0 };

/** A process entry: `requests` is what it counted itself; tx, exceptions and running_time follow from it. */
function proc(
  id: number,
  pid: number,
  fields: { requests?: number; startedAt?: number; lastUpdate?: number } = {},
): ProcessEntry {
  const requests = fields.requests ?? 0;
  return {
    ...{
      pid,
      id,
      accepting: 1,
      requests,
      exceptions: Math.floor(requests / 10),
      tx: 100 * requests,
      running_time: 1000 * requests,
    },
    ...{ in_flight: 0, avg_rt: 0, rss: 1, vsz: 1, heap_used: 1, event_loop_utilization: 0, event_loop_delay: 0 },
    ...{ last_spawn: 1, started_at: fields.startedAt ?? NOW - 60_000, last_update: fields.lastUpdate ?? NOW - 100 },
    ...{ interval: INTERVAL, request_start: 0, listen: [] },
  };
}

function slot(id: number, fields: Partial<SlotRecord> = {}): SlotRecord {
  return { id, pid: 0, respawn_count: 1, requests: 0, exceptions: 0, tx: 0, running_time: 0, cheap_since: 0, ...fields };
}

function file(processes: ProcessEntry[], slots: SlotRecord[] = []): ParsedStatus {
  return { processes, slots, problem: null };
}

function claimant(fields: Partial<SlotClaimant> & { requests?: number } = {}): SlotClaimant {
  const { requests, ...rest } = fields;
  return {
    ...{ pid: ME, preferredId: null, current: null, entry: proc(1, ME, { requests, lastUpdate: NOW }) },
    ...{ committed: null, leaving: false, ...rest },
  };
}

/** Pids listed in `alive` exist; every other pid is gone. */
function liveness(alive: number[], fields: Partial<Liveness> = {}): Liveness {
  return { now: NOW, staleAfterMs: STALE, isAlive: (pid) => alive.includes(pid), ...fields };
}

const holding = (id: number, respawnCount = 1, offset = ZERO): SlotAssignment => ({ id, respawnCount, offset });

function row(result: { workers: UwsgiWorker[] }, id: number): UwsgiWorker {
  const found = result.workers.find((w) => w.id === id);
  assert.ok(found, `slot ${id} is listed`);
  return found;
}

const sum = (result: { workers: UwsgiWorker[] }) => result.workers.reduce((total, w) => total + w.requests, 0);

/** Runs the claimant's merge on what the last one wrote, as the next writer would read it. */
function next(result: Reconciled): ParsedStatus {
  return file(result.processes, result.slots);
}

describe('reconcile(parsed, claimant, liveness)', () => {
  describe('when the file is empty', () => {
    it('should give slot 1, respawn_count 1, and a row with its own counters', () => {
      const result = reconcile(file([]), claimant({ requests: 3 }), liveness([]));
      assert.deepEqual(result.assignment, holding(1));
      assert.deepEqual(
        result.workers.map((w) => [w.id, w.pid, w.requests, w.respawn_count, w.status]),
        [[1, ME, 3, 1, 'idle']],
      );
    });
  });

  describe('when slots are held by live processes', () => {
    it('should give the lowest id no live process holds, a cheap one included', () => {
      const parsed = file(
        [proc(1, 11), proc(3, 13)],
        [slot(1, { pid: 11 }), slot(2, { cheap_since: NOW - 5000, requests: 7 }), slot(3, { pid: 13 })],
      );
      const result = reconcile(parsed, claimant(), liveness([11, 13]));
      assert.equal(result.assignment.id, 2);
      assert.equal(result.assignment.respawnCount, 2, 'a cheap slot taken over: +1');
      assert.equal(row(result, 2).requests, 7, 'its counters carried on');
    });
  });

  describe('when the claimant already holds a slot', () => {
    it('should keep it, replacing its own entry, with respawn_count unchanged', () => {
      const parsed = file(
        [proc(1, 11), proc(2, ME, { requests: 5 })],
        [slot(1, { pid: 11 }), slot(2, { pid: ME, respawn_count: 3, requests: 40 })],
      );
      const result = reconcile(parsed, claimant({ current: holding(2, 3), requests: 9 }), liveness([11, ME]));
      assert.deepEqual(result.assignment, holding(2, 3));
      assert.equal(row(result, 2).requests, 49, 'base 40 + own 9');
      assert.equal(row(result, 2).delta_requests, 9);
      assert.equal(result.processes.filter((p) => p.pid === ME).length, 1);
    });
  });

  describe('when a successor takes the slot while the old process still serves (pm2 reload)', () => {
    const old = 11;
    const successor = ME;
    const before = file(
      [proc(1, old, { requests: 40 }), proc(2, 12, { requests: 5 })],
      [slot(1, { pid: old }), slot(2, { pid: 12 })],
    );

    it('should attach the successor to the slot, own its row from its first write, and add 1 to respawn_count once', () => {
      const first = reconcile(before, claimant({ preferredId: 1, requests: 0 }), liveness([old, 12]));
      assert.deepEqual(first.assignment, holding(1, 2));
      assert.equal(row(first, 1).pid, successor);
      assert.equal(row(first, 1).requests, 40, "the old process's counts stay in the slot");
      assert.equal(row(first, 1).delta_requests, 0);
      assert.deepEqual(
        first.processes.map((p) => [p.id, p.pid]).sort(),
        [
          [1, old],
          [1, successor],
          [2, 12],
        ],
        'the old one stays attached, draining',
      );
      const again = reconcile(
        next(first),
        claimant({ preferredId: 1, current: first.assignment, requests: 2 }),
        liveness([old, 12, successor]),
      );
      assert.equal(row(again, 1).respawn_count, 2, 'not again at the next write');
    });

    it('should count what the draining process still serves in the slot, without counting anything twice', () => {
      const first = reconcile(before, claimant({ preferredId: 1, requests: 0 }), liveness([old, 12]));
      // The old process writes once more with 46 requests of its own: it keeps its slot, the successor keeps the row.
      const drained = reconcile(
        next(first),
        claimant({ pid: old, preferredId: 1, current: holding(1), entry: proc(1, old, { requests: 46, lastUpdate: NOW }) }),
        liveness([old, 12, successor]),
      );
      assert.equal(drained.assignment.id, 1, 'it never moves to another slot');
      assert.equal(row(drained, 1).pid, successor, 'nor takes the row back');
      assert.equal(row(drained, 1).requests, 46);
      // The successor serves 3; the old one exits cleanly with 47: folded into the base by its own last write.
      const withSuccessor = reconcile(
        next(drained),
        claimant({ preferredId: 1, current: first.assignment, requests: 3 }),
        liveness([old, 12, successor]),
      );
      assert.equal(row(withSuccessor, 1).requests, 49);
      const exited = reconcile(
        next(withSuccessor),
        claimant({
          pid: old,
          preferredId: 1,
          current: holding(1),
          entry: proc(1, old, { requests: 47, lastUpdate: NOW }),
          leaving: true,
        }),
        liveness([old, 12, successor]),
      );
      assert.equal(row(exited, 1).requests, 50, '47 + 3');
      assert.equal(row(exited, 1).pid, successor);
      assert.equal(row(exited, 1).respawn_count, 2);
      assert.equal(
        exited.processes.some((p) => p.pid === old),
        false,
      );
      assert.equal(exited.slots.find((s) => s.id === 1)?.requests, 47, 'in the base now');
    });

    it('should fold a draining process that crashed with its last written counts', () => {
      const first = reconcile(before, claimant({ preferredId: 1 }), liveness([old, 12]));
      const after = reconcile(
        next(first),
        claimant({ preferredId: 1, current: first.assignment, requests: 4 }),
        liveness([12, successor]),
      );
      assert.equal(row(after, 1).requests, 44);
      assert.equal(
        after.processes.some((p) => p.pid === old),
        false,
      );
      assert.equal(after.slots.find((s) => s.id === 1)?.requests, 40);
    });
  });

  describe('when a process leaves and nobody serves in its slot (scale-down, crash without respawn)', () => {
    it("should keep the slot's row as uWSGI's cheap row: pid 0, accepting 0, counters and id kept", () => {
      const parsed = file(
        [proc(1, 11, { requests: 5 }), proc(2, ME, { requests: 20 })],
        [slot(1, { pid: 11 }), slot(2, { pid: ME, respawn_count: 2, requests: 30 })],
      );
      const result = reconcile(parsed, claimant({ current: holding(2, 2), requests: 21, leaving: true }), liveness([11, ME]));
      const cheap = row(result, 2);
      assert.deepEqual(
        [
          cheap.pid,
          cheap.accepting,
          cheap.status,
          cheap.requests,
          cheap.respawn_count,
          cheap.in_flight,
          cheap.cores[0].in_request,
        ],
        [0, 0, 'cheap', 51, 2, 0, 0],
      );
      assert.equal(cheap.tx, 2100, 'tx: its own 2100, the base held none');
      assert.equal(result.slots.find((s) => s.id === 2)?.cheap_since, NOW);
      assert.equal(sum(result), 56, 'the sum over workers does not drop');
    });

    it('should give the cheap slot to the next process, its counters carried on and respawn_count + 1', () => {
      const parsed = file(
        [proc(1, 11)],
        [slot(1, { pid: 11 }), slot(2, { respawn_count: 2, requests: 51, cheap_since: NOW - 30_000 })],
      );
      const result = reconcile(parsed, claimant({ preferredId: 2, requests: 1 }), liveness([11]));
      assert.deepEqual(result.assignment, holding(2, 3));
      assert.equal(row(result, 2).requests, 52);
      assert.equal(row(result, 2).status, 'idle');
      assert.equal(result.slots.find((s) => s.id === 2)?.cheap_since, 0);
    });

    it('should keep cheap rows as long as any process of the app writes, however long ago they turned cheap', () => {
      const parsed = file(
        [proc(1, ME, { requests: 1 })],
        [slot(1, { pid: ME }), slot(3, { requests: 9, cheap_since: NOW - 3_600_000 })],
      );
      const result = reconcile(parsed, claimant({ current: holding(1), requests: 2 }), liveness([ME]));
      assert.equal(row(result, 3).status, 'cheap');
      assert.equal(row(result, 3).requests, 9);
    });
  });

  describe('when the file is from an earlier life of the app (no process for longer than the retention)', () => {
    it('should start afresh: ids from 1, zero counters, respawn_count 1', () => {
      const hourAgo = NOW - 3_600_000;
      const parsed = file(
        [proc(1, 11, { requests: 900, lastUpdate: hourAgo })],
        [slot(1, { pid: 11, respawn_count: 4 }), slot(2, { requests: 5, cheap_since: hourAgo })],
      );
      const result = reconcile(parsed, claimant(), liveness([]));
      assert.deepEqual(result.assignment, holding(1));
      assert.deepEqual(
        result.workers.map((w) => [w.id, w.requests]),
        [[1, 0]],
      );
    });

    it('should carry on when it was down for less: max(2 × staleAfterMs, 60 s) by default, or retainMs', () => {
      const parsed = file([], [slot(1, { requests: 5, respawn_count: 2, cheap_since: NOW - 59_000 })]);
      const kept = reconcile(parsed, claimant({ preferredId: 1 }), liveness([]));
      assert.equal(row(kept, 1).requests, 5);
      assert.equal(row(kept, 1).respawn_count, 3);
      const dropped = reconcile(parsed, claimant({ preferredId: 1 }), liveness([], { retainMs: 30_000 }));
      assert.equal(row(dropped, 1).requests, 0);
    });
  });

  describe("when a process's entry stopped updating while its pid lives (stuck)", () => {
    it('should show it busy with its last counters after 1.5 of its intervals, idle before', () => {
      const parsed = (silentMs: number) =>
        file([proc(1, 11, { requests: 8, lastUpdate: NOW - silentMs })], [slot(1, { pid: 11 })]);
      const fresh = reconcile(parsed(1400), claimant({ current: holding(2) }), liveness([11]));
      assert.equal(row(fresh, 1).status, 'idle');
      const stuck = reconcile(parsed(1600), claimant({ current: holding(2) }), liveness([11]));
      assert.equal(row(stuck, 1).status, 'busy');
      assert.equal(row(stuck, 1).cores[0].in_request, 1);
      assert.equal(row(stuck, 1).requests, 8);
      assert.equal(row(stuck, 1).pid, 11);
    });

    it('should fold it once silent for staleAfterMs, and count it once when it comes back', () => {
      const silent = file([proc(1, ME, { requests: 8, lastUpdate: NOW - STALE - 1 })], [slot(1, { pid: ME })]);
      const pruned = reconcile(
        silent,
        { ...claimant({ current: holding(2) }), pid: 11, entry: proc(2, 11, { lastUpdate: NOW }) },
        liveness([ME, 11]),
      );
      assert.equal(row(pruned, 1).status, 'cheap');
      assert.equal(row(pruned, 1).requests, 8);
      // It wakes with 10 counted, 8 of them written (and now folded): the slot shows 10, not 18.
      const back = reconcile(
        next(pruned),
        claimant({ current: holding(1), requests: 10, committed: { ...ZERO, requests: 8 } }),
        liveness([ME, 11]),
      );
      assert.equal(row(back, 1).requests, 10);
      assert.equal(row(back, 1).pid, ME);
      assert.deepEqual(back.assignment.offset, { ...ZERO, requests: 8 });
    });
  });

  describe("when the claimant's pid was reused", () => {
    it('should fold an entry with its pid as a predecessor when it holds no slot yet', () => {
      const parsed = file([proc(1, 11), proc(3, ME, { requests: 12 })], [slot(1, { pid: 11 }), slot(3, { pid: ME })]);
      const result = reconcile(parsed, claimant(), liveness([11, ME]));
      assert.equal(result.assignment.id, 2, 'slot 3 was freed only now; the lowest free one is 2');
      assert.equal(row(result, 3).status, 'cheap');
      assert.equal(row(result, 3).requests, 12);
      assert.equal(result.processes.filter((p) => p.pid === ME).length, 1);
    });
  });

  describe('when the file was replaced under a running process (corrupt, deleted)', () => {
    it('should recreate its slot with what it counts and its respawn_count', () => {
      const result = reconcile(
        file([]),
        claimant({ current: holding(3, 2), requests: 4, committed: { ...ZERO, requests: 3 } }),
        liveness([]),
      );
      assert.deepEqual(result.assignment, holding(3, 2));
      assert.equal(row(result, 3).requests, 4);
    });
  });

  describe('when two live processes name the same slot (a misconfigured workerId)', () => {
    it('should list the slot once, owned by the newest, with both counted', () => {
      const parsed = file(
        [proc(1, 11, { requests: 2, startedAt: NOW - 9000 }), proc(1, 12, { requests: 3, startedAt: NOW - 1000 })],
        [slot(1, { pid: 99 })],
      );
      const view = viewLedger(parsed, { now: NOW, isAlive: () => true });
      assert.deepEqual(
        view.workers.map((w) => [w.id, w.pid, w.requests]),
        [[1, 12, 5]],
      );
    });
  });
});

describe('viewLedger(parsed, liveness) (what readers show)', () => {
  it('should show a dead owner as no row of its own: its slot cheap, or owned by a live process of the slot', () => {
    const parsed = file(
      [proc(1, 11, { requests: 4 }), proc(2, 12, { requests: 6, startedAt: NOW - 9000 }), proc(2, 22, { requests: 1 })],
      [slot(1, { pid: 11 }), slot(2, { pid: 22, respawn_count: 2 })],
    );
    const view = viewLedger(parsed, { now: NOW, isAlive: (pid) => pid === 12 });
    assert.deepEqual(
      view.workers.map((w) => [w.id, w.pid, w.status, w.requests]),
      [
        [1, 0, 'cheap', 4],
        [2, 12, 'idle', 7],
      ],
    );
  });

  it('should give the same rows a writer gives', () => {
    const parsed = file(
      [proc(1, 11, { requests: 4 }), proc(2, 12, { requests: 6, lastUpdate: NOW - 5000 })],
      [slot(1, { pid: 11 }), slot(2, { pid: 12, requests: 3 }), slot(3, { cheap_since: NOW - 1 })],
    );
    const written = reconcile(parsed, claimant({ current: holding(4) }), liveness([11, 12, ME]));
    const view = viewLedger(next(written), { now: NOW, isAlive: (pid) => [11, 12, ME].includes(pid) });
    assert.deepEqual(view.workers, written.workers);
    assert.equal(row(view, 2).status, 'busy', 'stuck');
  });
});

describe('parseStatus(text) on the ledger', () => {
  it('should read back the ledger a writer wrote', () => {
    const result = reconcile(
      file([proc(2, 11, { requests: 3 })], [slot(2, { pid: 11 })]),
      claimant({ requests: 1 }),
      liveness([11]),
    );
    const header = { version: 'v', queues: new Map(), pid: 1, uid: 0, gid: 0, cwd: '/' };
    const parsed = parseStatus(formatUwsgiJson(buildDocument(header, result.workers, result)));
    assert.equal(parsed.problem, null);
    assert.deepEqual(
      parsed.processes,
      result.processes.toSorted((a, b) => a.id - b.id),
    );
    assert.deepEqual(
      parsed.slots,
      result.slots.toSorted((a, b) => a.id - b.id),
    );
  });
});

describe('isProcessAlive(pid)', () => {
  it('should tell this process alive and an exited one gone', () => {
    assert.equal(isProcessAlive(process.pid), true);
    const exited = spawnSync(process.execPath, ['-e', '0']).pid as number;
    assert.equal(isProcessAlive(exited), false);
  });

  it('should tell a zombie (dead, not reaped by its parent) gone, unless told to skip the /proc read', async (t) => {
    const pid = await zombie(t);
    assert.doesNotThrow(() => process.kill(pid, 0), 'a zombie still answers kill(pid, 0)');
    assert.equal(isProcessAlive(pid), false);
    assert.equal(isProcessAlive(pid, false), true, 'kill(pid, 0) alone cannot tell');
  });
});

describe('a monitor meeting a zombie worker in the file', () => {
  it('should keep its entry while it is fresh and drop it once it has missed a write (1.5 intervals old)', async (t) => {
    const pid = await zombie(t);
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'status.json');
    // A timer that never fires by itself: tick() stands for it, and nothing races the hand-written file.
    const interval = 3_600_000;
    const writeZombieEntry = (silentMs: number) => {
      const entry = { ...proc(7, pid, { requests: 5, lastUpdate: Date.now() - silentMs }), interval };
      const header = { version: 'test', queues: new Map(), pid, uid: 0, gid: 0, cwd: '/' };
      writeFileSync(path, formatUwsgiJson(buildDocument(header, [], { processes: [entry], slots: [slot(7, { pid })] })));
    };
    const errors: Error[] = [];
    const monitor = new WsgiStatusMonitor(path, { interval, onError: (error) => errors.push(error) });
    t.after(async () => {
      await monitor.close();
      cleanup();
    });

    writeZombieEntry(interval);
    await monitor.tick();
    assert.deepEqual(
      readStatus(path)
        .workers.map((w) => w.pid)
        .sort(),
      [pid, process.pid].sort(),
      'an entry written one interval ago is not read from /proc',
    );

    writeZombieEntry(2 * interval); // well within staleAfter (10 intervals)
    await monitor.tick();
    assert.deepEqual(
      readStatus(path).workers.map((w) => [w.id, w.pid, w.status, w.requests]),
      [
        [1, process.pid, 'idle', 0],
        [7, 0, 'cheap', 5],
      ],
      'an entry two intervals old: its pid is a zombie, so it is gone (its slot cheap, its counts kept)',
    );
    assert.deepEqual(errors, [], 'nothing reported');
  });
});

/**
 * A dead, never-reaped process: sh forks `sleep 0.5`, then becomes `sleep 30`, which never reaps it.
 * The child outlives sh's exec on purpose: one that exits first can be reaped by sh itself (CI saw it).
 */
async function zombie(t: TestContext): Promise<number> {
  const parent = spawn('sh', ['-c', 'sleep 0.5 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => parent.kill('SIGKILL'));
  const pid = Number(
    await new Promise<string>((resolve) => parent.stdout.once('data', (chunk: Buffer) => resolve(String(chunk)))),
  );
  const stateOf = () => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  };
  for (let i = 0; i < 500 && stateOf() !== 'Z'; i++) await sleep(10);
  assert.equal(stateOf(), 'Z', 'the child became a zombie');
  return pid;
}
