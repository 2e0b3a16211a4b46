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

  describe('in a monitor, with the real status file', () => {
    it("should write the queue of an acceptor it cannot see within its quiet ticks, and the app's own after its loop was blocked", async (t) => {
      const { dir, cleanup } = tempDir();
      t.after(cleanup);
      // An address this process names but does not serve: the way a cluster worker sees its primary's socket.
      const port = await stuckAcceptor();
      const file = join(dir, 'elsewhere.json');
      const errors: Error[] = [];
      const monitor = new WsgiStatusMonitor(file, { interval: 50, onError: (error) => errors.push(error) });
      t.after(() => monitor.close());
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
