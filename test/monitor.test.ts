/**
 * The monitor's rooms on their own (issue 17): the request path without a
 * file or a timer, against real servers and sockets; the reporter's episodes
 * (issue 13: a failure that clears and comes back is reported again), through
 * a real monitor and a real status path.
 */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { mkdirSync, rmdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Reporter } from '../src/monitor/reporter.ts';
import { RequestPath } from '../src/monitor/request-path.ts';
import { WsgiStatusMonitor } from '../src/monitor.ts';
import { blockFor, closeServer, deferred, get, listen, sleep, tempDir, until } from './support/helpers.ts';

/** A real server whose requests go through `path`; `handle` answers them. */
async function serve(
  path: RequestPath,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    path.begin(req, res);
    handle(req, res);
  });
  const port = await listen(server);
  return { port, close: () => closeServer(server) };
}

describe('RequestPath (no file, no timer)', () => {
  it('should count a request in while it runs and out when it ends, with its time', async () => {
    const reports: unknown[] = [];
    const path = new RequestPath({ recordRequest: true, report: (_kind, error) => reports.push(error) });
    const hold = deferred();
    const app = await serve(path, async (_req, res) => {
      await hold.promise;
      res.end('done');
    });
    try {
      const answer = get(app.port, '/held?secret=1');
      await until(() => path.tracker.inFlight === 1, 'the request in flight');
      assert.deepEqual(path.currentRequest(), { method: 'GET', uri: '/held' }, 'path only, never the query');
      hold.resolve();
      assert.equal((await answer).status, 200);
      await until(() => path.tracker.inFlight === 0, 'the request ended');
      assert.equal(path.tracker.requests, 1);
      assert.equal(path.tracker.exceptions, 0);
      assert.ok(path.tracker.runningTime > 0);
      assert.equal(path.currentRequest(), null);
      assert.equal(path.listen.size, 1, 'the server address was observed');
      assert.deepEqual(reports, []);
    } finally {
      await app.close();
    }
  });

  it('should count a failure once, whether marked before or after the response was sent', async () => {
    const path = new RequestPath({ recordRequest: false, report: () => undefined });
    const app = await serve(path, (req, res) => {
      if (req.url === '/before') {
        path.fail(res);
        path.fail(res);
        res.statusCode = 500;
        res.end();
      } else {
        res.end('sent', () => {
          path.fail(res);
          path.fail(res);
        });
      }
    });
    try {
      assert.equal((await get(app.port, '/before')).status, 500);
      assert.equal((await get(app.port, '/after')).status, 200);
      await until(() => path.tracker.requests === 2 && path.tracker.inFlight === 0, 'both ended');
      assert.equal(path.tracker.exceptions, 2);
      assert.equal(path.currentRequest(), null, 'nothing recorded when recordRequest is false');
    } finally {
      await app.close();
    }
  });

  it('should count the same response begun twice in a row once', async () => {
    const path = new RequestPath({ recordRequest: true, report: () => undefined });
    const app = await serve(path, (req, res) => {
      path.begin(req, res);
      res.end('once');
    });
    try {
      await get(app.port, '/');
      await until(() => path.tracker.inFlight === 0 && path.tracker.requests > 0, 'the end');
      assert.equal(path.tracker.requests, 1);
    } finally {
      await app.close();
    }
  });
});

describe('Reporter', () => {
  it('should report a kind once per episode, again after it cleared, and survive a throwing sink', () => {
    const seen: string[] = [];
    const reporter = new Reporter((error) => {
      seen.push(error.message);
      throw new Error('a broken onError');
    });
    reporter.report('file-EIO', new Error('one'));
    reporter.report('file-EIO', new Error('two'));
    reporter.report('lock-busy', 'three');
    reporter.clear('file-*');
    reporter.report('file-EIO', new Error('four'));
    reporter.report('lock-busy', new Error('five'));
    reporter.clear('lock-busy');
    reporter.report('lock-busy', new Error('six'));
    assert.deepEqual(seen, ['one', 'three', 'four', 'six']);
  });
});

describe('WsgiStatusMonitor reports', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  describe('when the same failure happens in two separate episodes', () => {
    it('should report each episode once', async () => {
      const file = join(dir, 'status.json');
      const errors: Error[] = [];
      const monitor = new WsgiStatusMonitor(file, { interval: 3_600_000, onError: (error) => errors.push(error) });
      try {
        const eisdir = () => errors.filter((error) => /EISDIR/.test(error.message)).length;
        mkdirSync(file);
        for (let i = 0; i < 3; i++) await monitor.tick();
        assert.equal(eisdir(), 1, 'reported once while it lasts');
        rmdirSync(file);
        await monitor.tick();
        assert.equal(eisdir(), 1, 'a good write reports nothing');
        rmSync(file);
        mkdirSync(file);
        await monitor.tick();
        await monitor.tick();
        assert.equal(eisdir(), 2, 'the second episode is reported again, once');
        rmdirSync(file);
      } finally {
        await monitor.close();
      }
    });
  });
});

describe('WsgiStatusMonitor event-loop delay', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  /** Counts the timer callbacks run from now on (of timers created from now on), until stopped. */
  const countTimerCallbacks = () => {
    const timeouts = new Set<number>();
    let count = 0;
    const hook = createHook({
      init(id, type) {
        if (type === 'Timeout') timeouts.add(id);
      },
      before(id) {
        if (timeouts.has(id)) count++;
      },
    }).enable();
    return {
      take: () => {
        const taken = count;
        count = 0;
        return taken;
      },
      stop: () => hook.disable(),
    };
  };

  it('should read an idle loop as (nearly) no delay, and a blocked one as the time beyond the sampling period', async () => {
    const monitor = new WsgiStatusMonitor(join(dir, 'delay.json'), { interval: 3_600_000 });
    try {
      await monitor.tick(); // starts a new measuring interval
      await sleep(300);
      const idle = monitor.snapshot().event_loop_delay;
      // The delay is sampled every 100 ms here; before that period was accounted for, an idle loop read 100,000 µs or more.
      assert.ok(idle < 15_000, `idle loop: ${idle} µs`);
      // An active interval (a tenth of it busy) keeps the sampling on through the next.
      blockFor(40);
      await monitor.tick();
      for (let i = 0; i < 2; i++) {
        blockFor(200);
        await sleep(25);
      }
      const blocked = monitor.snapshot().event_loop_delay;
      assert.ok(blocked >= 30_000, `blocked loop: ${blocked} µs`);
    } finally {
      await monitor.close();
    }
  });

  it('should write a tick that fired early as no delay, never as a negative one', async () => {
    // Node's timers run on the loop's millisecond clock, and about one in a
    // hundred fires a fraction of a millisecond early by performance.now(). A
    // negative delay made the next read drop this process's entry as foreign.
    const errors: unknown[] = [];
    const monitor = new WsgiStatusMonitor(join(dir, 'early.json'), { interval: 10, onError: (error) => errors.push(error) });
    try {
      const delays: number[] = [];
      let last = monitor.lastDocument;
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        await sleep(2);
        if (monitor.lastDocument !== last && monitor.lastDocument !== null) {
          last = monitor.lastDocument;
          delays.push(last.workers[0].event_loop_delay);
        }
      }
      assert.ok(delays.length >= 50, `${delays.length} writes`);
      assert.ok(
        delays.every((delay) => Number.isInteger(delay) && delay >= 0),
        `delays: ${delays.join(' ')}`,
      );
      assert.deepEqual(errors, []);
    } finally {
      await monitor.close();
    }
  });

  it('should sample only through intervals that follow an active one, and take a late tick as the sample of the others', async () => {
    const callbacks = countTimerCallbacks();
    // Sampled every 40 ms while on.
    const monitor = new WsgiStatusMonitor(join(dir, 'idle-delay.json'), { interval: 400 });
    try {
      // The first interval has no interval before it: no sampler, only this sleep and perhaps the first tick.
      await sleep(150);
      const first = callbacks.take();
      assert.ok(first <= 2, `${first} timer callbacks in the first 150 ms`);
      // A tick after 50 ms of work turns the sampler on.
      const before = monitor.lastDocument;
      blockFor(50);
      await until(() => monitor.lastDocument !== before, 'a tick after the work');
      callbacks.take();
      await sleep(200);
      assert.ok(callbacks.take() >= 4, 'the sampler did not start after an active interval');
      // A tick that finds the loop idle through its interval stops it: then
      // in 1.2 s, three ticks and this sleep.
      await sleep(900);
      callbacks.take();
      await sleep(1200);
      const idleCallbacks = callbacks.take();
      assert.ok(idleCallbacks <= 6, `${idleCallbacks} timer callbacks in 1.2 s of an idle loop`);
      const idle = monitor.lastDocument?.workers[0].event_loop_delay ?? -1;
      assert.ok(idle >= 0 && idle < 15_000, `idle: ${idle} µs`);
      // Block across the next tick's due time: the tick fires late, and that lateness is the interval's delay.
      const written = monitor.lastDocument;
      blockFor(500);
      await until(() => monitor.lastDocument !== written, 'the late tick');
      const late = monitor.lastDocument?.workers[0].event_loop_delay ?? 0;
      assert.ok(late >= 50_000, `late tick: ${late} µs`);
      // That interval was busy: the sampler runs again.
      callbacks.take();
      await sleep(200);
      assert.ok(callbacks.take() >= 4, 'the sampler did not restart after a busy interval');
    } finally {
      callbacks.stop();
      await monitor.close();
    }
  });
});
