/**
 * Issue 4, acceptance 1–9: many real processes, one status file. Workers are
 * real node:cluster workers (test/support/processes/cluster/primary.ts) or independent
 * processes, loaded over loopback; kills and signals are real; faults inside
 * the lock are injected in the worker by wrapping the status file's
 * read-merge-write, which runs under the lock.
 *
 * Timing: the machine is small and shared, so bounds are generous and only
 * the ones the issue states (three intervals, 10 s) are asserted as upper
 * bounds. Measured figures go to t.diagnostic.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  buildDocument,
  type ProcessEntry,
  type SlotRecord,
  type UwsgiDocument,
  type UwsgiWorker,
} from '../src/model/document.ts';
import { formatUwsgiJson } from '../src/model/format.ts';
import { withLock } from '../src/store/lock.ts';
import {
  ClusterGroup,
  type ProcessGroup,
  StandaloneGroup,
  startLoad,
  startReader,
  totalRequests,
} from './support/cluster-harness.ts';
import { get, readStatus, sleep, tempDir, waitForStatus } from './support/helpers.ts';

/** A fresh temp dir and process group, both gone after the test whatever happens. */
function setup<G extends ProcessGroup>(t: TestContext, group: (file: string) => G): { file: string; dir: string; group: G } {
  const temp = tempDir('wsgi-status-cluster-');
  const file = join(temp.dir, 'status.json');
  const created = group(file);
  t.after(async () => {
    await created.stop();
    temp.cleanup();
  });
  return { file, dir: temp.dir, group: created };
}

const pidsOf = (document: UwsgiDocument) => document.workers.map((worker) => worker.pid);
const entryOf = (document: UwsgiDocument, pid: number) => document.workers.find((worker) => worker.pid === pid);

/** No process of the group exited, and nothing was printed to stderr (an uncaught exception would be). */
function assertNoCrash(group: ProcessGroup, except: number[] = []): void {
  const exits = group.ofType('exit').filter((event) => !except.includes(event.pid));
  assert.deepEqual(exits, [], 'no worker may exit');
  assert.equal(group.stderr, '', 'nothing on stderr');
}

describe('cluster mode', () => {
  describe('when 4 node:cluster workers serve a load', () => {
    it('should list exactly 4 workers, ids 1–4, distinct pids, whose requests sum to the responses received', async (t) => {
      const { file, group } = setup(t, (file) => new ClusterGroup(4, { STATUS_FILE: file, INTERVAL: '200' }));
      const { pids, port } = await group.listening(4);

      const load = await startLoad(port, { concurrency: 8, maxRequests: 3000 }).done;
      assert.ok(load.ok > 0);

      const document = await waitForStatus(
        file,
        (d) => d.workers.length === 4 && totalRequests(d) === load.ok,
        15_000,
        `sum of requests = ${load.ok} responses`,
      );
      assert.deepEqual(
        document.workers.map((worker) => worker.id),
        [1, 2, 3, 4],
      );
      assert.equal(new Set(pidsOf(document)).size, 4);
      assert.deepEqual([...pidsOf(document)].sort(), [...pids].sort());
      // A worker names its supervisor, the cluster primary, as uWSGI names its master.
      assert.equal(document.pid, group.primary.pid);
      for (const worker of document.workers) {
        assert.equal(worker.requests, load.byPid.get(worker.pid) ?? 0, `requests of pid ${worker.pid}`);
        assert.equal(worker.respawn_count, 1);
      }
      assertNoCrash(group);
    });
  });

  describe('when a worker is killed with SIGKILL mid-load and the primary forks a replacement', () => {
    it('should give the replacement the same id, respawn_count 2 and the counts, and drop the dead pid within three intervals', async (t) => {
      const interval = 500;
      const { file, group } = setup(
        t,
        (file) => new ClusterGroup(4, { STATUS_FILE: file, INTERVAL: String(interval) }, { respawn: true }),
      );
      const { pids, port } = await group.listening(4);
      const load = startLoad(port, { concurrency: 8, durationMs: 30_000 });
      t.after(() => load.stop());

      const before = await waitForStatus(file, (d) => d.workers.length === 4 && d.workers.every((w) => w.requests > 0), 20_000);
      const victim = before.workers.find((worker) => worker.id === 2) as UwsgiWorker;
      // The largest count the file ever showed for the victim: a lower bound of its last written value.
      let victimLast = victim.requests;
      let killedAt = 0;
      let goneAt = 0;
      const reader = startReader(file, 5, (document) => {
        const entry = entryOf(document, victim.pid);
        if (entry) victimLast = Math.max(victimLast, entry.requests);
        else if (killedAt > 0 && goneAt === 0) goneAt = Date.now();
        return null;
      });

      // Killed just after one of its writes, not while it holds the lock: that case has its own bound
      // (the lock's stale time; the next test). Its next write is an interval away.
      const lastWrite = (entryOf(readStatus(file), victim.pid) as UwsgiWorker).last_update;
      await waitForStatus(file, (d) => (entryOf(d, victim.pid)?.last_update ?? 0) > lastWrite, 5000, "the victim's next write");
      await sleep(20);
      process.kill(victim.pid, 'SIGKILL');
      killedAt = Date.now();
      const exit = await group.waitFor((event) => event.type === 'exit' && event.pid === victim.pid);
      assert.equal(exit.signal, 'SIGKILL');
      const replacement = (await group.waitFor((event) => event.type === 'listening' && !pids.includes(event.pid))).pid;

      const after = await waitForStatus(
        file,
        (d) => entryOf(d, replacement) !== undefined && entryOf(d, victim.pid) === undefined,
        15_000,
        'replacement listed, victim gone',
      );
      reader.stop();
      await load.stop();

      const entry = entryOf(after, replacement) as UwsgiWorker;
      assert.equal(entry.id, 2, 'same id as the predecessor');
      assert.equal(entry.respawn_count, 2);
      assert.ok(entry.requests >= victimLast, `requests ${entry.requests} >= predecessor's last ${victimLast}`);
      // What it inherited is exactly the predecessor's last written count.
      assert.ok(entry.requests - entry.delta_requests >= victimLast);
      assert.deepEqual(
        after.workers.map((worker) => worker.id),
        [1, 2, 3, 4],
      );
      assert.ok(goneAt > 0, 'the reader saw the dead pid leave');
      t.diagnostic(`dead pid left the file ${goneAt - killedAt} ms after SIGKILL (interval ${interval} ms)`);
      assert.ok(goneAt - killedAt <= 3 * interval, `gone after ${goneAt - killedAt} ms, more than three intervals`);
      assertNoCrash(group, [victim.pid]);
    });
  });

  describe('when a worker is killed while it holds the lock', () => {
    it('should let the others write again within a bounded time (staleMs + 2 intervals, asserted <= 10 s), no crash', async (t) => {
      const interval = 200;
      const { file, group } = setup(t, (file) => new ClusterGroup(4, { STATUS_FILE: file, INTERVAL: String(interval) }));
      const { port } = await group.listening(4);
      const load = startLoad(port, { concurrency: 4, ratePerSecond: 400, durationMs: 30_000 });
      t.after(() => load.stop());

      const before = await waitForStatus(file, (d) => d.workers.length === 4, 20_000);
      const victim = (before.workers.find((worker) => worker.id === 3) as UwsgiWorker).pid;
      const survivors = pidsOf(before).filter((pid) => pid !== victim);
      group.send(victim, { cmd: 'fault', fault: 'kill-in-lock' });
      const exit = await group.waitFor((event) => event.type === 'exit' && event.pid === victim);
      assert.equal(exit.signal, 'SIGKILL');
      // The worker killed itself right after taking the lock: the directory's mtime (which it wrote down
      // just before) is the moment it died. Not stat()ed here: the exit may reach us after a takeover.
      const killedAt = Number(readFileSync(`${file}.killed-in-lock`, 'utf8'));
      assert.ok(killedAt > 0, 'the victim wrote down the mtime of the lock it held');

      const recovered = await waitForStatus(
        file,
        (d) => d.workers.some((w) => w.pid !== victim && w.last_update > killedAt),
        15_000,
        'a survivor writes again',
      );
      const recoveredAt = Math.max(...recovered.workers.map((w) => w.last_update));
      t.diagnostic(
        `others wrote again ${Math.round(recoveredAt - killedAt)} ms after the lock holder was killed (lock stale after 2000 ms)`,
      );
      assert.ok(recoveredAt - killedAt <= 10_000, 'recovered within 10 s');
      // Proof the lock was really held: nobody wrote until it went stale.
      assert.ok(recoveredAt - killedAt >= 1990, `recovered after only ${recoveredAt - killedAt} ms: was the lock held?`);

      const after = await waitForStatus(
        file,
        (d) => entryOf(d, victim) === undefined && survivors.every((pid) => (entryOf(d, pid)?.last_update ?? 0) > recoveredAt),
        15_000,
        'every survivor writes, the victim is pruned',
      );
      assert.deepEqual(
        after.workers.map((w) => [w.id, w.status === 'cheap']),
        [
          [1, false],
          [2, false],
          [3, true],
          [4, false],
        ],
        "the victim's slot stays listed, cheap (nobody respawns it here)",
      );
      await load.stop();
      assertNoCrash(group, [victim]);
      // Reported, never thrown: skipped ticks, and (rarely) a survivor that lost proper-lockfile's
      // stale-takeover race to another survivor and so skipped its write.
      for (const error of group.ofType('error')) {
        assert.match(String(error.message), /stayed busy; tick skipped|taken over while held/, 'only lock contention reported');
      }
    });
  });

  describe('when 8 workers tick every 50 ms for 10 s under load', () => {
    it('should lose no update and never show a concurrent reader invalid JSON or a missing live worker', async (t) => {
      const { file, group } = setup(t, (file) => new ClusterGroup(8, { STATUS_FILE: file, INTERVAL: '50' }));
      const { pids, port } = await group.listening(8);
      await waitForStatus(file, (d) => d.workers.length === 8, 20_000, '8 workers listed');

      const reader = startReader(file, 5, (document) => {
        const listed = new Set(pidsOf(document));
        const missing = pids.filter((pid) => !listed.has(pid));
        if (missing.length > 0) return `live worker(s) ${missing.join(', ')} missing`;
        if (new Set(document.workers.map((w) => w.id)).size !== document.workers.length) return 'duplicate ids';
        return null;
      });
      const started = Date.now();
      const load = await startLoad(port, { concurrency: 16, durationMs: 10_000 }).done;
      const elapsed = Date.now() - started;

      const settled = await waitForStatus(
        file,
        (d) => pids.every((pid) => entryOf(d, pid)?.requests === (load.byPid.get(pid) ?? 0)),
        15_000,
        'every worker count equals what it served',
      );
      const read = reader.stop();
      t.diagnostic(
        `${load.ok} responses in ${elapsed} ms (${Math.round((load.ok * 1000) / elapsed)}/s), ${load.errors} errors; ` +
          `${read.reads} reads, ${read.invalid} invalid, ${read.problems.length} with a missing worker`,
      );
      assert.equal(read.invalid, 0, `invalid reads: ${JSON.stringify(read.invalidSamples)}`);
      assert.deepEqual(read.problems, []);
      assert.ok(read.reads > 100, `the reader ran (${read.reads} reads)`);
      assert.equal(totalRequests(settled), load.ok);
      for (const pid of pids) assert.equal(entryOf(settled, pid)?.delta_requests, load.byPid.get(pid) ?? 0);
      assertNoCrash(group);
    });
  });

  describe('when independent processes start with NODE_APP_INSTANCE=0..3 (PM2)', () => {
    it('should give each the id instance + 1, whatever order they start in', async (t) => {
      const { file, group } = setup(t, () => new StandaloneGroup());
      const byInstance = new Map<number, number>();
      // Out of order: the lowest free slot would give other ids.
      for (const instance of [3, 1, 0, 2]) {
        const pid = await group.start({ STATUS_FILE: file, INTERVAL: '200', NODE_APP_INSTANCE: String(instance) });
        byInstance.set(instance, pid);
        await waitForStatus(file, (d) => entryOf(d, pid) !== undefined, 10_000, `instance ${instance} listed`);
      }
      const document = await waitForStatus(file, (d) => d.workers.length === 4, 20_000);
      for (const [instance, pid] of byInstance) assert.equal(entryOf(document, pid)?.id, instance + 1, `instance ${instance}`);
      assert.deepEqual(
        document.workers.map((w) => w.id),
        [1, 2, 3, 4],
      );
      // Under PM2 the supervisor is the parent: here, this test process.
      assert.equal(document.pid, process.pid);
      assertNoCrash(group);
    });

    it('should hand the slot to a new process with the same instance (pm2 reload) without counting twice', async (t) => {
      const { file, group } = setup(t, () => new StandaloneGroup());
      const env = { STATUS_FILE: file, INTERVAL: '200', NODE_APP_INSTANCE: '0' };
      const old = await group.start(env);
      const oldPort = group.events.find((e) => e.type === 'listening' && e.pid === old)?.port as number;
      for (let i = 0; i < 10; i++) await get(oldPort);
      await waitForStatus(file, (d) => entryOf(d, old)?.requests === 10, 20_000);

      // The successor starts while the old process still runs, as `pm2 reload` does.
      const successor = await group.start(env);
      const handedOver = await waitForStatus(file, (d) => entryOf(d, successor)?.id === 1, 10_000, 'successor owns slot 1');
      assert.deepEqual(
        handedOver.workers.map((w) => [w.id, w.pid, w.respawn_count, w.requests]),
        [[1, successor, 2, 10]],
        'one row: the successor, with the slot’s counts; the old process drains in the same slot',
      );
      // What the old process still serves counts in slot 1.
      for (let i = 0; i < 5; i++) await get(oldPort);
      await waitForStatus(file, (d) => d.workers[0]?.requests === 15, 10_000, 'the drained requests counted');

      process.kill(old, 'SIGTERM');
      await group.waitFor((e) => e.type === 'exit' && e.pid === old);
      const after = await waitForStatus(
        file,
        (d) => (d.processes ?? []).every((p) => p.pid !== old),
        20_000,
        'the old process gone from the ledger',
      );
      assert.deepEqual(
        after.workers.map((w) => [w.id, w.pid, w.respawn_count, w.requests, w.delta_requests]),
        [[1, successor, 2, 15, 0]],
      );
      assertNoCrash(group, [old]);
    });
  });

  describe("when a worker's event loop is blocked longer than the lock's stale time", () => {
    it('should recover without crashing, report the lost lock, and lose no update', async (t) => {
      const interval = 200; // lock stale time: max(2000, 2 × interval) = 2000 ms
      const { file, group } = setup(t, (file) => new ClusterGroup(4, { STATUS_FILE: file, INTERVAL: String(interval) }));
      const { pids, port } = await group.listening(4);
      const load = startLoad(port, { concurrency: 4, ratePerSecond: 300, durationMs: 30_000 });
      t.after(() => load.stop());
      const before = await waitForStatus(file, (d) => d.workers.length === 4, 20_000);
      const victim = (before.workers.find((worker) => worker.id === 2) as UwsgiWorker).pid;
      const others = pids.filter((pid) => pid !== victim);

      // Every write the others make, by its time.
      const writes = new Set<number>();
      const reader = startReader(file, 5, (document) => {
        for (const pid of others) writes.add(entryOf(document, pid)?.last_update ?? 0);
        return null;
      });
      t.after(() => reader.stop());

      const blockMs = 3500;
      group.send(victim, { cmd: 'fault', fault: 'block-in-lock', ms: blockMs });
      const blocking = await group.waitFor((event) => event.type === 'blocking' && event.pid === victim);
      const blockedAt = blocking.at as number;

      // Afterwards it writes again.
      await waitForStatus(
        file,
        (d) => (entryOf(d, victim)?.last_update ?? 0) > blockedAt + blockMs,
        10_000,
        'victim writes again',
      );
      // While it was still blocked, the others took the stale lock over and wrote.
      const during = [...writes].filter((at) => at > blockedAt + 1900 && at < blockedAt + blockMs);
      assert.ok(during.length > 0, 'others wrote while the victim was blocked');
      const compromised = await group.waitFor(
        (event) => event.type === 'error' && event.pid === victim && event.code === 'ECOMPROMISED',
        5000,
        'lost-lock report',
      );
      t.diagnostic(`blocked worker reported: ${compromised.message}`);

      const served = await load.stop();
      await waitForStatus(
        file,
        (d) => pids.every((pid) => entryOf(d, pid)?.requests === (served.byPid.get(pid) ?? 0)),
        15_000,
        'every worker count equals what it served',
      );
      assertNoCrash(group);
    });

    it('should never remove the lock of the process that took it over', async (t) => {
      const temp = tempDir('wsgi-status-lock-');
      const file = join(temp.dir, 'status.json');
      const staleMs = 2000;
      const holder = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(new URL('./support/processes/cluster/lock-holder.ts', import.meta.url)),
          file,
          '3500',
          String(staleMs),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      t.after(async () => {
        holder.kill('SIGKILL');
        await exited;
        temp.cleanup();
      });
      let said = '';
      holder.stdout.on('data', (chunk: Buffer) => {
        said += chunk.toString();
      });
      while (!said.includes('acquired')) await sleep(10);

      // Take the lock over once it is stale, and keep it until the blocked holder has finished.
      const seen = await withLock(
        file,
        { lockPath: `${file}.lock`, staleMs, waitMs: 5000, onCompromised: () => assert.fail('our lock was compromised') },
        async () => {
          while (!said.includes('released')) await sleep(10);
          await sleep(100);
          return existsSync(`${file}.lock`);
        },
      );
      await exited;
      assert.equal(seen, true, 'the blocked holder removed our lock directory');
      assert.match(said, /compromised/, 'the blocked holder noticed it lost the lock');
    });
  });

  describe('when a worker gets SIGTERM', () => {
    it('should still die of SIGTERM when the app has no handler of its own, its slot removed on the way', async (t) => {
      const { file, group } = setup(
        t,
        (file) => new ClusterGroup(1, { STATUS_FILE: file, INTERVAL: '200', SIGNAL_MODE: 'default' }),
      );
      const { pids, port } = await group.listening(1);
      for (let i = 0; i < 5; i++) await get(port);
      await waitForStatus(file, (d) => entryOf(d, pids[0])?.requests === 5, 20_000);

      process.kill(pids[0], 'SIGTERM');
      const exit = await group.waitFor((event) => event.type === 'exit');
      assert.equal(exit.signal, 'SIGTERM', 'died of the signal, as without the library');
      assert.equal(exit.code, null);
      // Nobody else writes this file: only the exit hook can have removed the slot.
      const document = JSON.parse(readFileSync(file, 'utf8')) as UwsgiDocument;
      assert.deepEqual(
        document.workers.map((w) => [w.id, w.pid, w.status, w.requests]),
        [[1, 0, 'cheap', 5]],
        'its slot cheap, its counts kept for the next process',
      );
    });

    it("should run the app's own handler and let it decide (here: keep serving)", async (t) => {
      const { file, group } = setup(
        t,
        (file) => new ClusterGroup(1, { STATUS_FILE: file, INTERVAL: '200', SIGNAL_MODE: 'keep' }),
      );
      const { pids, port } = await group.listening(1);
      await waitForStatus(file, (d) => entryOf(d, pids[0]) !== undefined, 20_000);

      process.kill(pids[0], 'SIGTERM');
      await group.waitFor((event) => event.type === 'signal' && event.pid === pids[0]);
      const signalledAt = Date.now();
      assert.equal((await get(port)).body, String(pids[0]), 'still serving');
      await waitForStatus(file, (d) => (entryOf(d, pids[0])?.last_update ?? 0) > signalledAt + 400, 5000, 'still ticking');
      assert.deepEqual(group.ofType('exit'), []);
    });

    it('should remove the slot after a graceful SIGTERM (the handler closes and exits)', async (t) => {
      const { file, group } = setup(
        t,
        (file) => new ClusterGroup(1, { STATUS_FILE: file, INTERVAL: '200', SIGNAL_MODE: 'graceful' }),
      );
      const { pids, port } = await group.listening(1);
      for (let i = 0; i < 7; i++) await get(port);
      await waitForStatus(file, (d) => entryOf(d, pids[0])?.requests === 7, 20_000);

      process.kill(pids[0], 'SIGTERM');
      await group.waitFor((event) => event.type === 'signal' && event.pid === pids[0]);
      const exit = await group.waitFor((event) => event.type === 'exit');
      assert.equal(exit.code, 0);
      assert.equal(exit.signal, null);
      const document = JSON.parse(readFileSync(file, 'utf8')) as UwsgiDocument;
      assert.deepEqual(
        document.workers.map((w) => [w.id, w.pid, w.status, w.requests]),
        [[1, 0, 'cheap', 7]],
      );
      assert.deepEqual(document.processes, []);
    });
  });

  describe('when a previous deployment left its status file behind', () => {
    it('should drop its dead pids, old ids, stale lock and orphaned temp files on the first tick', async (t) => {
      const temp = tempDir('wsgi-status-leftover-');
      const file = join(temp.dir, 'status.json');
      // Pids of processes that have exited: as dead as a previous deployment's.
      const dead = [0, 1, 2].map(() => spawnSync(process.execPath, ['-e', '0']).pid as number);
      const hourAgo = Date.now() - 3_600_000;
      const old = (id: number, pid: number): ProcessEntry => ({
        ...{ pid, id, accepting: 1, requests: 1000 * id, exceptions: 1, tx: 1, running_time: 1, in_flight: 1, avg_rt: 1 },
        ...{ rss: 1, vsz: 1, heap_used: 1, event_loop_utilization: 0, event_loop_delay: 0, last_spawn: 1 },
        ...{ started_at: hourAgo - 1000, last_update: hourAgo, interval: 1000, request_start: 1 },
      });
      const slot = (id: number, pid: number): SlotRecord => ({
        ...{ id, pid, respawn_count: 5, requests: 9, exceptions: 0, tx: 9, running_time: 9 },
        cheap_since: pid === 0 ? hourAgo : 0,
      });
      const ledger = {
        processes: [old(1, dead[0]), old(2, dead[1]), old(6, dead[2])],
        slots: [slot(1, dead[0]), slot(2, dead[1]), slot(4, 0), slot(6, dead[2]), slot(9, 0)],
      };
      const leftover = buildDocument(
        { version: 'wsgi-status/0.0.1', queues: new Map(), pid: 1, uid: 0, gid: 0, cwd: '/' },
        [],
        ledger,
      );
      writeFileSync(file, formatUwsgiJson(leftover));
      const seeded = readFileSync(file, 'utf8');
      // A lock left by a worker killed while holding it, and temp files of killed writers.
      mkdirSync(`${file}.lock`);
      utimesSync(`${file}.lock`, hourAgo / 1000, hourAgo / 1000);
      writeFileSync(`${file}.3735928559`, '{"partial');
      utimesSync(`${file}.3735928559`, hourAgo / 1000, hourAgo / 1000);
      writeFileSync(`${file}.12345`, 'a writer busy right now');
      // Young however slowly the worker starts: a live writer's file must be left alone.
      utimesSync(`${file}.12345`, Date.now() / 1000 + 60, Date.now() / 1000 + 60);

      // One worker, so the first write seen is its first tick.
      const group = new ClusterGroup(1, { STATUS_FILE: file, INTERVAL: '1000' });
      t.after(async () => {
        await group.stop();
        temp.cleanup();
      });
      const { pids } = await group.listening(1);

      // The first write of the new deployment.
      const first = await waitForStatus(file, () => readFileSync(file, 'utf8') !== seeded, 15_000, 'first write');
      assert.equal(first.workers.length, 1);
      assert.equal(first.workers[0].pid, pids[0]);
      assert.equal(first.workers[0].id, 1);
      assert.equal(first.workers[0].respawn_count, 1, 'nothing inherited from an hour-old deployment');
      assert.equal(first.workers[0].requests, 0);
      assert.deepEqual(
        first.slots?.map((slot) => slot.id),
        [1],
        'old slots dropped',
      );
      for (const pid of dead) assert.equal(entryOf(first, pid), undefined);
      // The sweep runs in the same locked section, right after the write.
      for (let i = 0; i < 200 && existsSync(`${file}.3735928559`); i++) await sleep(10);
      assert.equal(existsSync(`${file}.3735928559`), false, 'orphaned temp file removed');
      assert.equal(existsSync(`${file}.12345`), true, 'a young temp file may be a live writer’s: kept');

      assertNoCrash(group);
    });
  });

  describe('when 4 workers serve a steady load for 10 s (short soak; `npm run soak` runs 60 s)', () => {
    it('should keep heap and RSS flat and the file valid at every read', async (t) => {
      const { file, group } = setup(t, (file) => new ClusterGroup(4, { STATUS_FILE: file, INTERVAL: '200' }, { exposeGc: true }));
      const { pids, port } = await group.listening(4);
      await waitForStatus(file, (d) => d.workers.length === 4, 20_000);
      const reader = startReader(file, 10, (document) =>
        pids.every((pid) => entryOf(document, pid) !== undefined) ? null : 'a live worker is missing',
      );
      const load = startLoad(port, { concurrency: 4, ratePerSecond: 400, durationMs: 10_000 });
      await sleep(3000); // warm-up: JIT, pools, first GCs
      const start = await group.memory(pids);
      const served = await load.done;
      const end = await group.memory(pids);
      const read = reader.stop();

      const mb = (bytes: number) => (bytes / 1048576).toFixed(1);
      for (const pid of pids) {
        const [a, b] = [start.get(pid), end.get(pid)] as { heapUsed: number; rss: number }[];
        t.diagnostic(`pid ${pid}: heap ${mb(a.heapUsed)} -> ${mb(b.heapUsed)} MiB, rss ${mb(a.rss)} -> ${mb(b.rss)} MiB`);
        // Flat: a leak of even 1 KiB per request would add ~2.5 MiB over these ~2800 requests a worker.
        assert.ok(b.heapUsed - a.heapUsed < 1.5 * 1048576, `heap of ${pid} grew ${mb(b.heapUsed - a.heapUsed)} MiB`);
        assert.ok(b.rss - a.rss < 24 * 1048576, `rss of ${pid} grew ${mb(b.rss - a.rss)} MiB`);
      }
      t.diagnostic(`${served.ok} responses, ${read.reads} reads, ${read.invalid} invalid`);
      assert.equal(read.invalid, 0);
      assert.deepEqual(read.problems, []);
      await waitForStatus(file, (d) => totalRequests(d) === served.ok, 10_000, 'sum of requests = responses');
      assertNoCrash(group);
    });
  });
});
