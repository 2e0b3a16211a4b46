/**
 * The listen queue a tick writes: measured from /proc/net/tcp when the
 * interval gave a queue a chance to form, carried over otherwise. Real
 * queues: a child process listens and never accepts (its loop is blocked),
 * and the test's connections wait in its accept queue.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { ListenQueueReading } from '../src/model/ledger.ts';
import { ListenQueueSampler, type LoopActivity, QUIET_EVERY } from '../src/monitor/listen-queues.ts';
import { WsgiStatusMonitor } from '../src/monitor.ts';
import { measureListenQueues, type NamedAddress } from '../src/system/proc.ts';
import { Children } from './support/children.ts';
import { closeServer, listen, readStatus, tempDir, until } from './support/helpers.ts';
import { LineReader } from './support/stats-helpers.ts';

const QUIET: LoopActivity = { utilization: 0.01, stallMs: 0, lateMs: 0 };

/** The real measurement, counted. */
function countedSampler(): { sampler: ListenQueueSampler; calls: () => number } {
  let calls = 0;
  const sampler = new ListenQueueSampler((addresses) => {
    calls++;
    return measureListenQueues(addresses);
  });
  return { sampler, calls: () => calls };
}

const named = (port: number): NamedAddress => ({ name: `127.0.0.1:${port}`, port });

describe('ListenQueueSampler', () => {
  const children = new Children();
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await children.killAll('SIGKILL');
  });

  /** A listener in another process that never accepts: its loop is blocked from the moment it listens. */
  async function stuckAcceptor(): Promise<number> {
    const child = children.spawnNode([
      '--eval',
      `const s = require('node:net').createServer();
       s.listen(0, '127.0.0.1', () => {
         process.stdout.write(JSON.stringify({ port: s.address().port }) + '\\n');
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
       });`,
    ]);
    const line = await new LineReader(child).waitFor((text) => text.includes('port'), 20_000, 'the acceptor listening');
    return (JSON.parse(line) as { port: number }).port;
  }

  /** Opens `count` connections to `port` and waits until the kernel holds them all in its accept queue. */
  async function queue(port: number, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    }
    await until(() => measureListenQueues([named(port)]).get(named(port).name)?.queue === count, `a queue of ${count}`, 5000);
  }

  describe('when the loop is quiet', () => {
    it(`should measure on the first tick and then on every ${QUIET_EVERY}th, returning the last reading between`, async (t) => {
      const server = createServer();
      const port = await listen(server);
      t.after(() => closeServer(server));
      const { sampler, calls } = countedSampler();
      const first = sampler.sample([named(port)], QUIET);
      assert.deepEqual([...first], [[named(port).name, { queue: 0 }]]);
      assert.equal(calls(), 1);
      for (let tick = 1; tick < QUIET_EVERY; tick++) {
        assert.equal(sampler.sample([named(port)], QUIET), first, `quiet tick ${tick}: the last reading`);
      }
      assert.equal(calls(), 1);
      sampler.sample([named(port)], QUIET);
      assert.equal(calls(), 2, `measured again on quiet tick ${QUIET_EVERY}`);
    });

    it('should measure at once when the addresses change', async (t) => {
      const [a, b] = [createServer(), createServer()];
      const ports = [await listen(a), await listen(b)];
      t.after(() => Promise.all([closeServer(a), closeServer(b)]));
      const { sampler, calls } = countedSampler();
      sampler.sample([named(ports[0])], QUIET);
      const both = sampler.sample([named(ports[0]), named(ports[1])], QUIET);
      assert.equal(calls(), 2);
      assert.deepEqual(
        [...both.keys()],
        ports.map((port) => named(port).name),
      );
    });

    it('should keep measuring on every tick while the last reading was not 0, and find the queue gone', async () => {
      const port = await stuckAcceptor();
      const { sampler, calls } = countedSampler();
      assert.equal(sampler.sample([named(port)], QUIET).get(named(port).name)?.queue, 0);
      await queue(port, 3);
      // Quiet ticks: the queue is seen at the latest on the QUIET_EVERY-th.
      let seen = 0;
      for (let tick = 1; tick <= QUIET_EVERY && seen === 0; tick++)
        seen = sampler.sample([named(port)], QUIET).get(named(port).name)?.queue ?? 0;
      assert.equal(seen, 3);
      const before = calls();
      for (const socket of sockets.splice(0)) socket.destroy();
      await children.killAll('SIGKILL'); // the listener and its queue are gone
      const after = sampler.sample([named(port)], QUIET);
      assert.equal(calls(), before + 1, 'a queue was there: measured on the next quiet tick');
      assert.equal(after.get(named(port).name), undefined, 'the address no longer listens');
    });
  });

  describe('when the loop was busy, stalled or late', () => {
    for (const [what, loop] of [
      ['busy half the interval', { ...QUIET, utilization: 0.5 }],
      ['stalled 10 ms beyond its sampling period', { ...QUIET, stallMs: 10 }],
      ['late by 10 ms', { ...QUIET, lateMs: 10 }],
    ] as const) {
      it(`should measure on every tick: ${what}`, async (t) => {
        const server = createServer();
        const port = await listen(server);
        t.after(() => closeServer(server));
        const { sampler, calls } = countedSampler();
        for (let tick = 0; tick < 3; tick++) sampler.sample([named(port)], loop);
        assert.equal(calls(), 3);
      });
    }
  });

  describe('shared by the processes of one file', () => {
    /** The other samplers' latest readings (the newest of them is what their entries hold). */
    const othersOf = (group: ListenQueueSampler[], me: ListenQueueSampler): ListenQueueReading[] =>
      group.flatMap((sampler) => (sampler === me ? [] : (sampler.reading() ?? [])));

    it(`should measure about once per ${QUIET_EVERY} quiet ticks for a group of 8, not 8 times`, async (t) => {
      const server = createServer();
      const port = await listen(server);
      t.after(() => closeServer(server));
      const group = Array.from({ length: 8 }, () => countedSampler());
      const samplers = group.map((member) => member.sampler);
      const rounds = 6 * QUIET_EVERY;
      let now = Date.now();
      for (let round = 0; round < rounds; round++) {
        for (const { sampler } of group) {
          const queues = sampler.sample([named(port)], QUIET, othersOf(samplers, sampler), now++);
          assert.equal(queues.get(named(port).name)?.queue, 0);
        }
      }
      const total = group.reduce((sum, member) => sum + member.calls(), 0);
      t.diagnostic(`8 samplers, ${rounds} quiet ticks each: ${total} measurements (alone: ${8 * (rounds / QUIET_EVERY)})`);
      // First ticks: each measures (nothing shared yet); then one a round of QUIET_EVERY ticks.
      assert.ok(total <= 8 + rounds / QUIET_EVERY, `${total} measurements`);
      const writing = samplers.filter((sampler) => sampler.reading(othersOf(samplers, sampler)) !== null);
      assert.equal(writing.length, 1, 'only the newest reading is written');
    });

    it('should take a reading of another process only when it is newer than its own and covers every address', async (t) => {
      const [a, b] = [createServer(), createServer()];
      const ports = [await listen(a), await listen(b)];
      t.after(() => Promise.all([closeServer(a), closeServer(b)]));
      const { sampler, calls } = countedSampler();
      const now = Date.now();
      const both = [named(ports[0]), named(ports[1])];
      const zero = (at: number, names: NamedAddress[]): ListenQueueReading => ({
        measured_at: at,
        sockets: names.map(({ name }) => ({ name, queue: 0 })),
      });
      sampler.sample(both, QUIET, [], now);
      const due = (others: ListenQueueReading[], at: number) => {
        for (let tick = 1; tick < QUIET_EVERY; tick++) sampler.sample(both, QUIET, others, at);
        return sampler.sample(both, QUIET, others, at);
      };
      due([zero(now - 1, both)], now + 1);
      assert.equal(calls(), 2, 'older than its own: measured');
      due([zero(now + 5, [both[0]])], now + 6);
      assert.equal(calls(), 3, 'one address missing: measured');
      due([zero(now + 10, both)], now + 11);
      assert.equal(calls(), 3, 'newer, every address: taken');
      assert.equal(sampler.reading([zero(now + 10, both)]), null, 'it writes no reading while another is newer');
      assert.equal(sampler.reading([])?.measured_at, now + 6);
    });

    it("should measure on its next tick after another process's reading showed a queue", async () => {
      const port = await stuckAcceptor();
      const { sampler, calls } = countedSampler();
      const now = Date.now();
      sampler.sample([named(port)], QUIET, [], now);
      await queue(port, 2);
      const shared: ListenQueueReading = { measured_at: now + 1, sockets: [{ name: named(port).name, queue: 2 }] };
      let taken = 0;
      for (let tick = 1; tick <= QUIET_EVERY; tick++)
        taken = sampler.sample([named(port)], QUIET, [shared], now + 2).get(named(port).name)?.queue ?? 0;
      assert.equal(taken, 2);
      assert.equal(calls(), 1, 'taken, not measured');
      assert.equal(sampler.sample([named(port)], QUIET, [shared], now + 3).get(named(port).name)?.queue, 2);
      assert.equal(calls(), 2, 'a queue was there: measured itself on the next tick');
    });

    it('should share the quiet readings among real processes writing one file', async (t) => {
      const { dir, cleanup } = tempDir();
      t.after(cleanup);
      const file = join(dir, 'group.json');
      const group = Array.from(
        { length: 4 },
        () =>
          new LineReader(
            children.spawnNode(['test/support/processes/quiet-listener.ts', file], {
              env: { INTERVAL: '100', WARMUP: '1500', DURATION: '6500' },
            }),
          ),
      );
      const done = await Promise.all(
        group.map(
          async (out) =>
            JSON.parse(await out.waitFor((line) => line.includes('done'), 30_000, 'the end of the run')) as {
              writes: number;
              measurements: number;
            },
        ),
      );
      const writes = done.reduce((sum, run) => sum + run.writes, 0);
      const measurements = done.reduce((sum, run) => sum + run.measurements, 0);
      t.diagnostic(`4 processes, ${writes} writes: ${measurements} measurements (${JSON.stringify(done)})`);
      assert.deepEqual(
        group.flatMap((out) => out.lines.filter((line) => line.includes('error'))),
        [],
        'nothing reported',
      );
      // Alone, each would measure on every QUIET_EVERY-th write: writes / QUIET_EVERY in all (measured: 35 of 160).
      // Shared, about a quarter of that, plus a few where two processes' turns cross (measured: 11 to 16 of 160 to 200).
      assert.ok(measurements >= 1, 'the quiet-listener fixture counts measurements');
      assert.ok(measurements <= 0.6 * (writes / QUIET_EVERY), `${measurements} measurements for ${writes} writes`);
    });
  });

  describe('in a monitor, with the real status file', () => {
    it("should write the queue of an acceptor it cannot see within its quiet ticks, and the app's own after its loop was blocked", async (t) => {
      const { dir, cleanup } = tempDir();
      // An address this process names but does not serve: the way a cluster worker sees its primary's socket.
      const port = await stuckAcceptor();
      const file = join(dir, 'elsewhere.json');
      const errors: Error[] = [];
      const monitor = new WsgiStatusMonitor(file, { interval: 50, onError: (error) => errors.push(error) });
      // Closed first: its last write would make the directory again after the cleanup (after hooks run in order).
      t.after(() => monitor.close());
      t.after(cleanup);
      monitor.observeServer({ address: () => ({ address: '127.0.0.1', family: 'IPv4', port }) });
      await monitor.tick();
      assert.equal(readStatus(file).listen_queue, 0);
      await queue(port, 4);
      const queued = Date.now();
      await until(() => readStatus(file).listen_queue === 4, 'the queue in the file', 10_000);
      t.diagnostic(`acceptor elsewhere: queue of 4 in the file ${Date.now() - queued} ms after it formed (ticks every 50 ms)`);
      assert.deepEqual(errors, [], 'nothing reported');

      // The app's own loop blocked for 2 s, 20 connections waiting: the first write after the block shows them.
      const appFile = join(dir, 'blocked.json');
      const app = children.spawnNode(['test/support/processes/stats/app.ts', appFile], {
        env: { BLOCK_MS: '2000', INTERVAL: '1000' },
      });
      const appOut = new LineReader(app);
      const { port: appPort } = JSON.parse(await appOut.waitFor((line) => line.includes('ready'), 20_000)) as { port: number };
      const blocker = connect(appPort, '127.0.0.1');
      sockets.push(blocker);
      blocker.write('GET /block HTTP/1.1\r\nHost: x\r\n\r\n');
      await appOut.waitFor((line) => line.includes('blocking'));
      const before = readStatus(appFile).workers[0].last_update;
      for (let i = 0; i < 20; i++) sockets.push(connect(appPort, '127.0.0.1'));
      let written = readStatus(appFile);
      await until(
        () => {
          written = readStatus(appFile);
          return written.workers[0].last_update !== before;
        },
        'a write after the block',
        10_000,
      );
      assert.equal(written.listen_queue, 20, 'the first write after the block');
    });
  });
});
