/**
 * Real PM2 7 (issue 12): rolling reloads, restarts, kill -9 and scaling of
 * an app using the library, under steady load, with the status file read
 * every 100 ms throughout and invariants 1–6 checked (test/invariants.ts).
 * PM2 runs from node_modules with its own PM2_HOME in a temp dir and is
 * killed at the end of each test, pass or fail.
 *
 * WSGI_STATUS_PM2_RUNS (default 1) repeats the three-reloads run.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { UwsgiDocument } from '../src/model/document.ts';
import { startLoad } from './support/cluster-harness.ts';
import { freePort, get, sleep } from './support/helpers.ts';
import { InvariantPoller, liveRows, sumRequests } from './support/invariants.ts';
import { Pm2 } from './support/pm2-harness.ts';
import { runInProcess } from './support/stats-helpers.ts';

const INTERVAL = 200;
const RUNS = Number(process.env.WSGI_STATUS_PM2_RUNS ?? 1);
// Paced, so that the load is bounded and leaves the (shared, 2-core) machine to PM2 and the app.
const LOAD = { concurrency: 8, ratePerSecond: 400, durationMs: 120_000 };

/** PM2 with the app in cluster mode, `instances` of it, killed after the test. */
async function cluster(t: TestContext, extraEnv: Record<string, string> = {}) {
  const pm2 = new Pm2();
  t.after(() => pm2.kill());
  const file = join(pm2.dir, 'status.json');
  const port = await freePort();
  const env: Record<string, string> = { STATUS_FILE: file, INTERVAL: String(INTERVAL), PORT: String(port), ...extraEnv };
  await pm2.start({ mode: 'cluster', instances: 4, env: { ...env, STATS: env.STATS?.replace('DIR', pm2.dir) ?? '' } });
  return { pm2, file, port, stats: join(pm2.dir, 'stats.sock') };
}

function readDocument(file: string): UwsgiDocument {
  return JSON.parse(readFileSync(file, 'utf8')) as UwsgiDocument;
}

/** Polls the file until `predicate` holds; resolves with the document and how long it took. */
async function settle(file: string, predicate: (document: UwsgiDocument) => boolean, what: string, timeoutMs = 10_000) {
  const started = Date.now();
  let last: UwsgiDocument | null = null;
  while (Date.now() - started < timeoutMs) {
    try {
      last = readDocument(file);
      if (predicate(last)) return { document: last, ms: Date.now() - started };
    } catch {
      // Not written yet.
    }
    await sleep(20);
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms; last workers: ${JSON.stringify(last?.workers.map(summary))}`);
}

const summary = (w: UwsgiDocument['workers'][number]) => `${w.id}:${w.pid}:${w.status}:${w.requests}:r${w.respawn_count}`;

/** Invariant 6: the non-cheap rows are exactly PM2's online instances, each in slot NODE_APP_INSTANCE + 1. */
async function assertRowsArePm2Instances(pm2: Pm2, document: UwsgiDocument): Promise<void> {
  const expected = (await pm2.instances()).map((i): [number, number] => [i.instance + 1, i.pid]);
  assert.deepEqual(liveRows(document), expected, 'the non-cheap rows are the live processes, with their ids');
}

/** Waits until every online instance shows in its slot and the rows are exactly those. */
async function settled(pm2: Pm2, file: string) {
  const instances = await pm2.instances();
  const want = JSON.stringify(instances.map((i) => [i.instance + 1, i.pid]));
  return settle(file, (d) => JSON.stringify(liveRows(d)) === want, 'the rows settled on the online instances');
}

/** Invariant 4: after the load stops, the sum over workers equals the responses, exactly, within two intervals or so. */
async function assertExactTotal(t: TestContext, file: string, ok: number): Promise<void> {
  const { document, ms } = await settle(file, (d) => sumRequests(d) >= ok, `sum of requests = ${ok}`);
  t.diagnostic(`sum of requests reached the ${ok} responses ${ms} ms after the load stopped`);
  assert.equal(sumRequests(document), ok, 'nothing counted twice');
  await sleep(2 * INTERVAL);
  assert.equal(sumRequests(readDocument(file)), ok, 'and it stays there');
}

/** The 4-instance cluster, settled, with the status file read every 100 ms and the load running for 500 ms. */
async function clusterUnderLoad(t: TestContext) {
  const { pm2, file, port } = await cluster(t);
  await settled(pm2, file);
  const poller = new InvariantPoller(file, 100);
  t.after(() => poller.stop());
  const load = startLoad(port, LOAD);
  t.after(() => load.stop());
  await sleep(500);
  return { pm2, file, poller, load };
}

function assertNoViolation(t: TestContext, poller: InvariantPoller): void {
  const report = poller.stop();
  t.diagnostic(`${report.reads} reads of the status file, ${report.violations.length} violations`);
  assert.deepEqual(report.violations, []);
  assert.ok(report.reads > 20, `the poller ran (${report.reads} reads)`);
}

describe('PM2 cluster mode, 4 instances, under load', () => {
  for (let run = 1; run <= RUNS; run++) {
    describe(`when pm2 reload runs three times in a row${RUNS > 1 ? ` (run ${run} of ${RUNS})` : ''}`, () => {
      it('should keep invariants 1–6 on every read and count every response exactly once', { timeout: 180_000 }, async (t) => {
        const { pm2, file, poller, load } = await clusterUnderLoad(t);
        for (let reload = 0; reload < 3; reload++) {
          await pm2.run('reload', 'app');
          await sleep(300);
        }
        const result = await load.stop();
        t.diagnostic(`${result.ok} responses, ${result.errors} connection errors during the reloads`);
        assert.ok(result.ok > 500, `the load ran (${result.ok} responses)`);
        await assertExactTotal(t, file, result.ok);
        const { document } = await settled(pm2, file);
        await assertRowsArePm2Instances(pm2, document);
        assert.deepEqual(
          document.workers.map((w) => w.respawn_count),
          [4, 4, 4, 4],
          'three replacements per slot, +1 each',
        );
        assertNoViolation(t, poller);
      });
    });
  }

  describe('when it is restarted, one instance is killed with kill -9, then scaled to 2 and back to 4', () => {
    it('should keep invariants 1–6: cheap rows after the scale-down, their counters carried on after the scale-up', {
      timeout: 180_000,
    }, async (t) => {
      const { pm2, file, poller, load } = await clusterUnderLoad(t);

      await pm2.run('restart', 'app');
      let { document } = await settled(pm2, file);
      await assertRowsArePm2Instances(pm2, document);
      assert.deepEqual(
        document.workers.map((w) => w.respawn_count),
        [2, 2, 2, 2],
      );

      // kill -9: PM2 starts a replacement in the same slot; what the victim answered after its last write is lost.
      await sleep(500);
      const victim = (await pm2.instances())[1].pid;
      process.kill(victim, 'SIGKILL');
      await settle(file, (d) => d.workers[1].pid !== victim && d.workers[1].status !== 'cheap', 'a replacement in slot 2');
      ({ document } = await settled(pm2, file));
      const respawns = [2, 3, 2, 2];
      assert.deepEqual(
        document.workers.map((w) => w.respawn_count),
        respawns,
      );

      // Scale down: PM2 chooses which two instances stop; their slots stay listed, cheap.
      await sleep(500);
      await pm2.run('scale', 'app', '2');
      ({ document } = await settled(pm2, file));
      await assertRowsArePm2Instances(pm2, document);
      const cheap = document.workers.filter((w) => w.status === 'cheap');
      assert.equal(cheap.length, 2);
      assert.equal(document.workers.length, 4);
      for (const row of cheap) {
        assert.deepEqual([row.pid, row.accepting, row.in_flight], [0, 0, 0]);
        assert.ok(row.requests > 0, `the cheap row ${row.id} keeps its counters`);
      }

      await sleep(500);
      await pm2.run('scale', 'app', '4');
      ({ document } = await settled(pm2, file));
      await assertRowsArePm2Instances(pm2, document);
      for (const row of cheap) respawns[row.id - 1]++;
      assert.deepEqual(
        document.workers.map((w) => w.respawn_count),
        respawns,
        'the scaled-up instances took the cheap slots over: +1 each',
      );
      for (const row of cheap) assert.ok(document.workers[row.id - 1].requests >= row.requests, 'counters carried on');

      await sleep(500);
      const result = await load.stop();
      t.diagnostic(`${result.ok} responses, ${result.errors} connection errors`);
      // Invariant 4 with a kill -9: the victim's answers after its last write cannot be known (and
      // nothing may be counted twice). The poller saw its last write's delta_requests, or an earlier one.
      const { document: final } = await settle(
        file,
        (d) => sumRequests(d) >= result.ok - (result.byPid.get(victim) ?? 0),
        'totals',
      );
      await sleep(2 * INTERVAL);
      const lost = result.ok - sumRequests(readDocument(file));
      const unwritten = (result.byPid.get(victim) ?? 0) - (poller.report.deltaByPid.get(victim) ?? 0);
      t.diagnostic(`kill -9 lost ${lost} counts; the victim answered ${unwritten} after the last write a reader saw`);
      assert.ok(lost >= 0, `counted ${-lost} responses that never reached a client`);
      assert.ok(lost <= unwritten, `lost ${lost} > ${unwritten}`);
      assert.ok(final.workers.length === 4);
      assertNoViolation(t, poller);
    });
  });

  describe('when a handler blocks the event loop of one of 4 instances for 3 s', () => {
    it('should show that instance busy in the file and on the stats socket within 2 intervals, and idle within 2 intervals after', {
      timeout: 60_000,
    }, async (t) => {
      const { pm2, file, port, stats } = await cluster(t, { STATS: 'DIR/stats.sock' });
      await settled(pm2, file);
      const seen = { file: new Map<number, Transitions>(), socket: new Map<number, Transitions>() };
      let stop = false;
      const watch = (source: keyof typeof seen, read: () => Promise<UwsgiDocument | null>) =>
        (async () => {
          while (!stop) {
            const document = await read().catch(() => null);
            for (const w of document?.workers ?? []) note(seen[source], w.pid, w.status);
            await sleep(10);
          }
        })();
      const watchers = [
        watch('file', async () => readDocument(file)),
        // The stats socket is shared through PM2's primary: a connection handed to the stuck instance waits, so each read is short.
        watch('socket', async () => JSON.parse(await readSocket(stats, 150)) as UwsgiDocument),
      ];
      t.after(async () => {
        stop = true;
        await Promise.all(watchers);
      });
      await sleep(500);
      const sentAt = Date.now();
      const response = await get(port, '/busy?ms=3000');
      const answeredAt = Date.now();
      const pid = Number(response.body);
      await sleep(3 * INTERVAL);
      stop = true;
      await Promise.all(watchers);
      for (const source of ['file', 'socket'] as const) {
        const times = seen[source].get(pid);
        assert.ok(times && times.busyAt > 0, `shown busy in the ${source}`);
        t.diagnostic(
          `${source}: busy ${times.busyAt - sentAt} ms after the request, idle ${times.idleAt - answeredAt} ms after the answer`,
        );
        assert.ok(times.busyAt - sentAt <= 2 * INTERVAL, `${source}: busy after ${times.busyAt - sentAt} ms`);
        assert.ok(
          times.idleAt > 0 && times.idleAt - answeredAt <= 2 * INTERVAL,
          `${source}: idle after ${times.idleAt - answeredAt} ms`,
        );
      }
    });
  });
});

interface Transitions {
  busyAt: number;
  idleAt: number;
}

/** Notes when a pid was first seen busy, and first idle after that. */
function note(seen: Map<number, Transitions>, pid: number, status: string): void {
  const times = seen.get(pid) ?? { busyAt: 0, idleAt: 0 };
  if (status === 'busy' && times.busyAt === 0) times.busyAt = Date.now();
  if (status === 'idle' && times.busyAt !== 0 && times.idleAt === 0) times.idleAt = Date.now();
  seen.set(pid, times);
}

/** Reads a stats socket to its end; rejects after `timeoutMs`. */
function readSocket(path: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timed out')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}

describe('PM2 fork mode, 2 instances sharing one stats unix socket', () => {
  describe('when the instance that serves it is stopped', () => {
    it('should be served again within two intervals by the other, readable by the CLI', { timeout: 60_000 }, async (t) => {
      const pm2 = new Pm2();
      t.after(() => pm2.kill());
      const file = join(pm2.dir, 'status.json');
      const stats = join(pm2.dir, 'stats.sock');
      const holder = join(pm2.dir, 'holder');
      const env = { STATUS_FILE: file, INTERVAL: String(INTERVAL), PORT: '0', STATS: stats, HOLDER_FILE: holder };
      await pm2.start({ mode: 'fork', instances: 2, env });
      const [first, second] = await pm2.instances();
      await settle(file, (d) => liveRows(d).length === 2, 'both instances listed');
      await settle(file, () => existsSync(holder), 'a holder');
      assert.equal(Number(readFileSync(holder, 'utf8')), first.pid, 'instance 0 started first and serves the socket');
      const before = await runInProcess(['show', stats, '--json']);
      assert.equal(before.code, 0, before.stderr);

      await pm2.run('stop', String(first.pmId));
      const stoppedAt = Date.now();
      for (;;) {
        if (existsSync(holder) && Number(readFileSync(holder, 'utf8')) === second.pid && (await answers(stats))) break;
        assert.ok(Date.now() - stoppedAt < 5000, 'served again');
        await sleep(10);
      }
      const tookMs = Date.now() - stoppedAt;
      t.diagnostic(`the socket answered again ${tookMs} ms after pm2 stop returned, served by instance 1`);
      assert.ok(tookMs <= 2 * INTERVAL, `within two intervals (${tookMs} ms)`);

      const shown = await runInProcess(['show', stats, '--json']);
      assert.equal(shown.code, 0, shown.stderr);
      const document = JSON.parse(shown.stdout) as UwsgiDocument;
      await settle(file, (d) => d.workers[0]?.status === 'cheap', 'slot 1 cheap');
      const served = JSON.parse((await runInProcess(['show', stats, '--json'])).stdout) as UwsgiDocument;
      assert.deepEqual(
        served.workers.map((w) => [w.id, w.pid, w.status === 'cheap']),
        [
          [1, 0, true],
          [2, second.pid, false],
        ],
      );
      assert.ok(document.workers.length === 2);
      const mackerel = await runInProcess(['mackerel', stats, '--tempfile', join(pm2.dir, 'mackerel.state')]);
      assert.equal(mackerel.code, 0, mackerel.stderr);
      const value = (name: string) =>
        Number(new RegExp(`^uWSGI\\.uWSGI\\.workers\\.${name}\\t([\\d.]+)\\t`, 'm').exec(mackerel.stdout)?.[1]);
      assert.equal(value('cheap'), 1, mackerel.stdout);
      assert.equal(value('idle') + value('busy'), 1, mackerel.stdout);
      // The app itself kept serving throughout.
      assert.equal((await get(Number(await portOf(file, second.pid)), '/')).body, String(second.pid));
    });
  });
});

/** Whether a unix socket accepts a connection and answers something. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    let got = 0;
    socket.setTimeout(1000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
    });
    socket.on('close', () => resolve(got > 0));
    socket.on('error', () => undefined);
  });
}

/** The port an instance listens on, from its row's `listen`. */
async function portOf(file: string, pid: number): Promise<number> {
  const { document } = await settle(file, (d) => d.workers.some((w) => w.pid === pid && (w.listen ?? []).length > 0), 'port');
  return (document.workers.find((w) => w.pid === pid)?.listen ?? [])[0].port;
}
