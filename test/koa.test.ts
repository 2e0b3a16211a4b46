/**
 * What only the Koa adapter does: Koa 2 and 3 in the matrix's apps
 * (test/support/frameworks-harness.ts), and the middleware's own options.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Koa3 from 'koa';
import koaStatus from '../src/adapters/koa.ts';
import { assertCounted, current, FRAMEWORKS, koaErrors, useApp } from './support/frameworks-harness.ts';
import { closeServer, get, listen, tempDir, until } from './support/helpers.ts';

describe('wsgiStatus(path, options) in a Koa app', { concurrency: 2 }, () => {
  for (const framework of FRAMEWORKS.filter((f) => f.name.startsWith('Koa'))) {
    describe(`${framework.name} ${framework.version}`, { concurrency: 1 }, () => {
      const s = useApp(framework);

      describe('when an error is thrown downstream', () => {
        it('should rethrow the very same error to Koa', async () => {
          const seen = koaErrors.get(s.control) ?? [];
          const count = seen.length;
          await s.client.get('/throw');
          await until(() => seen.length > count, "Koa's 'error' event");
          assert.equal(seen.at(-1), s.control.thrown.at(-1));
        });
      });

      describe('when ctx.respond is false', () => {
        it('should stay busy until the app ends ctx.res itself', async () => {
          const before = await current(s.running);
          const entered = s.control.entered + 1;
          const pending = s.client.get('/respond-false');
          await s.control.waitEntered(entered);
          // The middleware chain has resolved by now; the response has not.
          const busy = await current(s.running);
          assert.equal(busy.status, 'busy');
          s.control.release();
          const response = await pending;
          assert.equal(response.status, 200);
          assert.equal(response.body, 'raw');
          await assertCounted(s.running, before, { requests: 1 });
        });
      });
    });
  }
});

describe('wsgiStatus(path, options) for Koa', () => {
  describe("when an error reaches Koa's error handling", () => {
    it("should count it through the app's 'error' event, heard once per app, and stop hearing it on close()", async (t) => {
      const { dir, cleanup } = tempDir();
      t.after(cleanup);
      const app = new Koa3();
      const reported: unknown[] = [];
      app.on('error', (error: unknown) => reported.push(error));
      const middleware = koaStatus(join(dir, 'koa-errors.json'), { interval: 3_600_000 });
      app.use(middleware);
      app.use((ctx) => {
        if (ctx.path === '/throw-400') ctx.throw(400, 'bad input');
        ctx.body = 'ok';
      });
      const server = createServer(app.callback());
      const port = await listen(server);
      t.after(() => closeServer(server));

      const before = middleware.monitor.snapshot();
      assert.equal((await get(port, '/ok')).status, 200);
      assert.equal(app.listenerCount('error'), 2, "the app's own listener and the monitor's, added by the first request");
      assert.equal((await get(port, '/throw-400')).status, 400);
      assert.equal((await get(port, '/throw-400')).status, 400);
      assert.equal(app.listenerCount('error'), 2, 'heard once, however many requests');
      assert.equal(reported.length, 2, "Koa's own reporting is untouched");
      // A request ends with its response's 'close', a tick after the client has the answer.
      await until(() => middleware.monitor.snapshot().requests - before.requests >= 3, 'three requests ended', 1000);
      const after = middleware.monitor.snapshot();
      assert.equal(after.requests - before.requests, 3);
      assert.equal(after.exceptions - before.exceptions, 2, 'each thrown error once');

      await middleware.close();
      assert.equal(app.listenerCount('error'), 1, 'close() stops listening');
    });
  });

  describe('when an option is invalid', () => {
    it('should throw at once, naming it', () => {
      assert.throws(() => koaStatus('', {}), {
        name: 'TypeError',
        message: 'wsgi-status: option "path" must be a non-empty file path string, got ""',
      });
      assert.throws(() => koaStatus('/tmp/x.json', { interval: 1 }), {
        name: 'RangeError',
        message: 'wsgi-status: option "interval" must be between 10 and 3600000, got 1',
      });
    });
  });
});
