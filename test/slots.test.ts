/**
 * Slot assignment, pure: which id a process gets, what it inherits, and which
 * entries are pruned. The real-process side is in cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { buildDocument, buildWorker, type RetiredSlot, type UwsgiWorker } from '../src/model/document.ts';
import { formatUwsgiJson } from '../src/model/format.ts';
import { type ParsedStatus, parseStatus } from '../src/model/parse.ts';
import { WsgiStatusMonitor } from '../src/monitor.ts';
import { type Liveness, reconcile, type SlotAssignment, type SlotClaimant } from '../src/store/slots.ts';
import { isProcessAlive } from '../src/system/liveness.ts';
import { readStatus, sleep, tempDir } from './support/helpers.ts';

const NOW = 1_800_000_000_000;
const STALE = 10_000;
const ME = 4242;

function worker(
  id: number,
  pid: number,
  fields: { requests?: number; respawnCount?: number; lastUpdate?: number } = {},
): UwsgiWorker {
  return buildWorker({
    ...{ id, pid, accepting: true, requests: fields.requests ?? 0, deltaRequests: 0, exceptions: 0, inFlight: 0 },
    ...{ rss: 0, vsz: 0, heapUsed: 0, runningTime: 0, lastSpawn: 0, respawnCount: fields.respawnCount ?? 1, tx: 0, avgRt: 0 },
    ...{ requestStart: 0, eventLoopUtilization: 0, eventLoopDelay: 0, now: fields.lastUpdate ?? NOW - 100, listen: [] },
  });
}

function retiredSlot(id: number, fields: { requests?: number; respawnCount?: number; retiredAt?: number } = {}): RetiredSlot {
  const requests = fields.requests ?? 0;
  return {
    ...{ id, pid: 1, respawn_count: fields.respawnCount ?? 1, requests, exceptions: 1, tx: 10 * requests, running_time: 100 },
    retired_at: fields.retiredAt ?? NOW - 1000,
  };
}

function file(workers: UwsgiWorker[], retired: RetiredSlot[] = []): ParsedStatus {
  return { workers, retired, problem: null };
}

function claimant(fields: Partial<SlotClaimant> = {}): SlotClaimant {
  return { pid: ME, preferredId: null, current: null, ...fields };
}

/** Pids listed in `alive` exist; every other pid is gone. */
function liveness(alive: number[], fields: Partial<Liveness> = {}): Liveness {
  return { now: NOW, staleAfterMs: STALE, isAlive: (pid) => alive.includes(pid), ...fields };
}

const holding = (id: number, respawnCount = 1): SlotAssignment => ({
  id,
  respawnCount,
  base: { requests: 0, exceptions: 0, tx: 0, runningTime: 0 },
});

describe('reconcile(parsed, claimant, liveness)', () => {
  describe('when the file is empty', () => {
    it('should give slot 1, respawn_count 1 and zero counters', () => {
      const result = reconcile(file([]), claimant(), liveness([]));
      assert.deepEqual(result.assignment, holding(1));
      assert.deepEqual(result.others, []);
      assert.equal(result.retired.size, 0);
    });
  });

  describe('when slots are taken by live workers', () => {
    it('should give the lowest free id', () => {
      const result = reconcile(file([worker(1, 11), worker(3, 13)]), claimant(), liveness([11, 13]));
      assert.equal(result.assignment.id, 2);
      assert.deepEqual(
        result.others.map((w) => w.pid),
        [11, 13],
      );
    });
  });

  describe('when the claimant already holds a slot', () => {
    it('should keep it, and leave its own old entry out of the others', () => {
      const current = { ...holding(3, 2), base: { requests: 5, exceptions: 0, tx: 0, runningTime: 0 } };
      const result = reconcile(file([worker(1, 11), worker(3, ME)]), claimant({ current }), liveness([11, ME]));
      assert.equal(result.assignment, current);
      assert.deepEqual(
        result.others.map((w) => w.pid),
        [11],
      );
    });

    it('should forget a retired record of its own id (it had been thought gone)', () => {
      const result = reconcile(file([], [retiredSlot(2, { requests: 50 })]), claimant({ current: holding(2) }), liveness([]));
      assert.equal(result.assignment.id, 2);
      assert.equal(result.retired.has(2), false);
    });
  });

  describe("when a worker's pid is gone", () => {
    it('should drop it and keep its counters for the next process in the slot', () => {
      const result = reconcile(
        file([worker(1, 11), worker(2, 12, { requests: 70, respawnCount: 3 })]),
        claimant({ current: holding(1) }),
        liveness([]),
      );
      assert.deepEqual(result.others, []);
      const slot = result.retired.get(2);
      assert.equal(slot?.requests, 70);
      assert.equal(slot?.respawn_count, 3);
      assert.equal(slot?.retired_at, NOW);
    });

    it('should let a new process take the slot over: same id, respawn_count + 1, counters carried', () => {
      const dead = worker(2, 12, { requests: 70, respawnCount: 3 });
      const result = reconcile(file([worker(1, 11), dead]), claimant(), liveness([11]));
      assert.equal(result.assignment.id, 2);
      assert.equal(result.assignment.respawnCount, 4);
      assert.deepEqual(result.assignment.base, { requests: 70, exceptions: 0, tx: 0, runningTime: 0 });
      assert.equal(result.retired.has(2), false, 'the record is consumed by the takeover');
    });

    it('should carry every slot counter of a retired record', () => {
      const result = reconcile(file([], [retiredSlot(1, { requests: 8, respawnCount: 2 })]), claimant(), liveness([]));
      assert.deepEqual(result.assignment, {
        id: 1,
        respawnCount: 3,
        base: { requests: 8, exceptions: 1, tx: 80, runningTime: 100 },
      });
    });
  });

  describe('when a worker has not been refreshed for staleAfterMs', () => {
    it('should drop it even though a process with its pid exists', () => {
      const stale = worker(1, 11, { lastUpdate: NOW - STALE - 1 });
      const fresh = worker(2, 12, { lastUpdate: NOW - STALE });
      const result = reconcile(file([stale, fresh]), claimant(), liveness([11, 12]));
      assert.deepEqual(
        result.others.map((w) => w.pid),
        [12],
      );
      assert.equal(result.assignment.id, 1);
      assert.equal(result.assignment.respawnCount, 2);
    });
  });

  describe('when gone slots are older than the retention', () => {
    it('should drop retired records and silent workers from an earlier life without carrying their counters', () => {
      const hourAgo = NOW - 3_600_000;
      const parsed = file(
        [worker(1, 11, { requests: 900, lastUpdate: hourAgo })],
        [retiredSlot(2, { requests: 5, retiredAt: hourAgo })],
      );
      const result = reconcile(parsed, claimant(), liveness([]));
      assert.deepEqual(result.assignment, holding(1));
      assert.equal(result.retired.size, 0);
    });

    it('should keep them for max(2 × staleAfterMs, 60 s) by default, or retainRetiredMs', () => {
      const parsed = file([], [retiredSlot(1, { retiredAt: NOW - 59_000 }), retiredSlot(2, { retiredAt: NOW - 61_000 })]);
      const kept = reconcile(parsed, claimant({ current: holding(3) }), liveness([]));
      assert.deepEqual([...kept.retired.keys()], [1]);
      const longer = reconcile(parsed, claimant({ current: holding(3) }), liveness([], { retainRetiredMs: 120_000 }));
      assert.deepEqual([...longer.retired.keys()].sort(), [1, 2]);
    });
  });

  describe('when a process manager gives a preferred id (PM2: NODE_APP_INSTANCE + 1)', () => {
    it('should take that id even when a lower one is free', () => {
      const result = reconcile(file([]), claimant({ preferredId: 4 }), liveness([]));
      assert.equal(result.assignment.id, 4);
    });

    it('should inherit the counters retired under that id', () => {
      const result = reconcile(file([], [retiredSlot(3, { requests: 30 })]), claimant({ preferredId: 3 }), liveness([]));
      assert.equal(result.assignment.respawnCount, 2);
      assert.equal(result.assignment.base.requests, 30);
    });

    it('should take the slot over from a live occupant, as a successor does in a pm2 reload', () => {
      const old = worker(1, 11, { requests: 40 });
      const result = reconcile(file([old, worker(2, 12)]), claimant({ preferredId: 1 }), liveness([11, 12]));
      assert.equal(result.assignment.id, 1);
      assert.equal(result.assignment.respawnCount, 2);
      assert.equal(result.assignment.base.requests, 40);
      assert.deepEqual(
        result.others.map((w) => w.pid),
        [12],
      );
    });

    it('should move a displaced process to a free slot without counting its past again, and not fight back', () => {
      // The successor (pid 21) now holds slot 1; the old process (ME) held it with 40 requests of its own.
      const successor = worker(1, 21, { requests: 40, respawnCount: 2 });
      const own = { requests: 40, exceptions: 2, tx: 400, runningTime: 4000 };
      const result = reconcile(
        file([successor], [retiredSlot(2, { requests: 7 })]),
        claimant({ preferredId: 1, current: holding(1), own }),
        liveness([21]),
      );
      assert.equal(result.assignment.id, 2, 'the lowest free slot, not its preferred one');
      assert.equal(result.assignment.respawnCount, 2);
      // base + own = the new slot's inherited total: nothing counted twice.
      assert.equal(result.assignment.base.requests + own.requests, 7);
      assert.equal(result.assignment.base.tx + own.tx, 70);
      assert.deepEqual(
        result.others.map((w) => w.pid),
        [21],
      );
      // Next tick: it keeps its new slot.
      const again = reconcile(
        file([successor, worker(2, ME)]),
        claimant({ preferredId: 1, current: result.assignment, own }),
        liveness([21, ME]),
      );
      assert.equal(again.assignment, result.assignment);
    });
  });

  describe("when the claimant's pid was reused", () => {
    it('should treat an entry with its pid as a predecessor when it holds no slot yet', () => {
      const predecessor = worker(3, ME, { requests: 12, respawnCount: 1 });
      const result = reconcile(file([worker(1, 11), worker(2, 12), predecessor]), claimant(), liveness([11, 12, ME]));
      assert.equal(result.assignment.id, 3);
      assert.equal(result.assignment.respawnCount, 2);
      assert.equal(result.assignment.base.requests, 12);
      assert.equal(
        result.others.some((w) => w.pid === ME),
        false,
      );
    });
  });

  describe('when the file lists the same id twice', () => {
    it('should keep the most recently updated entry (parseStatus) and never hand out a taken id', () => {
      const text = JSON.stringify({
        workers: [worker(1, 11, { lastUpdate: NOW - 200 }), worker(1, 12, { lastUpdate: NOW - 100 }), worker(2, 13)],
      });
      const parsed = parseStatus(text);
      assert.deepEqual(
        parsed.workers.map((w) => w.pid),
        [12, 13],
      );
      const result = reconcile(parsed, claimant(), liveness([11, 12, 13]));
      assert.equal(result.assignment.id, 3);
    });

    it('should move a claimant whose id another live worker holds', () => {
      const result = reconcile(file([worker(1, 11), worker(2, 12)]), claimant({ current: holding(2) }), liveness([11, 12]));
      assert.equal(result.assignment.id, 3);
      const ids = [...result.others.map((w) => w.id), result.assignment.id];
      assert.equal(new Set(ids).size, ids.length);
    });
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
      const entry = worker(7, pid, { requests: 5, lastUpdate: Date.now() - silentMs });
      const header = { version: 'test', queues: new Map(), pid, uid: 0, gid: 0, cwd: '/' };
      writeFileSync(path, formatUwsgiJson(buildDocument(header, [entry])));
    };
    const monitor = new WsgiStatusMonitor(path, { interval, onError: (error) => assert.fail(error) });
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
      readStatus(path).workers.map((w) => w.pid),
      [process.pid],
      'an entry two intervals old: its pid is a zombie, so it is gone',
    );
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
