/**
 * Issue 3's acceptance, one matrix for every supported way in: raw node:http
 * (`wrap` and `instrument`), Express 4 and 5 (and Express 5 through
 * `instrument`), Koa 2 and 3, Fastify 4 and 5, Hapi (through
 * `instrument(server.listener)`) and http2's compatibility API.
 *
 * Each framework builds the same small app twice, with and without
 * wsgi-status, on 127.0.0.1:0 (test/support/frameworks-harness.ts). The
 * tests send real requests and read the real status file; counters are
 * compared as deltas, so the tests of one framework share one app and one
 * file. What only Koa or Fastify does is in koa.test.ts and fastify.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  assertCounted,
  assertCountedOnceAfterAbort,
  current,
  FRAMEWORKS,
  INTERVAL,
  useApp,
} from './support/frameworks-harness.ts';
import { readStatus, sleep, until, workerOf } from './support/helpers.ts';

describe('wsgi-status in every framework', { concurrency: 3 }, () => {
  for (const framework of FRAMEWORKS) {
    // Sequential within a framework: its tests share one app and compare counters as deltas.
    describe(`${framework.name} ${framework.version}`, { concurrency: 1 }, () => {
      const s = useApp(framework);

      describe('when a request succeeds', () => {
        it('should count one request, add its bytes to tx and be idle again', async () => {
          const before = await current(s.running);
          const readBefore = s.client.bytesRead();
          const response = await s.sameAsPlain('/ok');
          assert.equal(response.status, 200);
          assert.equal(response.body, 'hello world');
          const after = await assertCounted(s.running, before, { requests: 1, exceptions: 0 });
          assert.equal(after.delta_requests - before.delta_requests, 1);
          s.assertTx(before, after, [response], readBefore);
        });
      });

      for (const [when, route] of [
        ['when the handler throws synchronously', '/throw'],
        ['when the handler rejects', '/reject'],
      ] as const) {
        describe(when, () => {
          it("should count one exception and leave the framework's error response unchanged", async () => {
            const before = await current(s.running);
            const response = await s.sameAsPlain(route);
            assert.equal(response.status, 500);
            const after = await assertCounted(s.running, before, { requests: 1, exceptions: 1 });
            assert.equal(after.apps[0].exceptions, after.exceptions);
          });
        });
      }

      describe('when the client hangs up while the handler is still running', () => {
        it('should be idle once the connection closes, and not count the late answer again', async () => {
          const before = await current(s.running);
          const entered = s.control.entered + 1;
          const pending = s.client.open('/hold');
          await s.control.waitEntered(entered);
          const busy = await current(s.running);
          assert.equal(busy.status, 'busy');
          assert.equal(busy.in_flight, 1);
          assert.equal(busy.uri, '/hold');
          pending.abort();
          // The handler now answers a response that is gone.
          await assertCountedOnceAfterAbort(s.running, before, () => s.control.release());
        });
      });

      describe('when the client hangs up half way through a streamed response', () => {
        it('should be idle once the connection closes, and count the request once', async () => {
          const before = await current(s.running);
          const stream = s.control.armStream();
          const pending = s.client.open('/stream');
          stream.write('first half\n');
          await pending.response;
          await until(() => pending.body().includes('first half'), 'the first chunk');
          assert.equal((await current(s.running)).status, 'busy');
          pending.abort();
          await assertCountedOnceAfterAbort(s.running, before, () => stream.end('second half, to nobody\n'));
        });
      });

      describe('when a response streams for over a second', () => {
        it('should be busy for the whole stream, and idle after it', async () => {
          const before = await current(s.running);
          const stream = s.control.armStream();
          const started = Date.now();
          const pending = s.client.open('/stream');
          for (let i = 1; i <= 4; i++) {
            stream.write(`chunk ${i}\n`);
            if (i === 1) await pending.response;
            await until(() => pending.body().includes(`chunk ${i}\n`), `chunk ${i}`);
            const during = await current(s.running);
            assert.equal(during.status, 'busy', `busy after chunk ${i}`);
            assert.equal(during.in_flight, 1);
            assert.equal(during.requests, before.requests, 'not counted before it ends');
            await sleep(250);
          }
          stream.end('end\n');
          await assertCounted(s.running, before, { requests: 1 });
          assert.ok(Date.now() - started >= 1000);
          // The server may be done (and the request counted) before the client has read the last chunk.
          await until(() => pending.body().endsWith('end\n'), 'the last chunk');
          assert.equal(pending.body(), 'chunk 1\nchunk 2\nchunk 3\nchunk 4\nend\n');
        });
      });

      describe('when 100 requests share one keep-alive connection', () => {
        it('should count exactly 100 and end with nothing in flight', async () => {
          let connections = 0;
          const onConnection = () => connections++;
          s.app.server.on('connection', onConnection);
          try {
            const before = await current(s.running);
            const readBefore = s.client.bytesRead();
            const responses = await s.client.sequence('/ok', 100);
            assert.ok(responses.every((r) => r.status === 200 && r.body === 'hello world'));
            const after = await assertCounted(s.running, before, { requests: 100, exceptions: 0 });
            assert.equal(connections, framework.http2 ? 0 : 1, 'one connection (HTTP/2: the session already open)');
            s.assertTx(before, after, responses, readBefore);
          } finally {
            s.app.server.removeListener('connection', onConnection);
          }
        });
      });

      describe('when 50 requests run concurrently', () => {
        it('should show 50 in flight, then count exactly 50', async () => {
          const before = await current(s.running);
          const entered = s.control.entered + 50;
          const pending = Array.from({ length: 50 }, () => s.client.get('/hold'));
          await s.control.waitEntered(entered);
          const busy = await current(s.running);
          assert.equal(busy.status, 'busy');
          assert.equal(busy.in_flight, 50);
          s.control.release();
          const responses = await Promise.all(pending);
          assert.ok(responses.every((r) => r.status === 200 && r.body === 'late'));
          await assertCounted(s.running, before, { requests: 50 });
        });
      });

      describe('when no route matches', () => {
        it("should count the framework's 404 as a request, not an exception", async () => {
          const before = await current(s.running);
          const response = await s.sameAsPlain('/missing');
          assert.equal(response.status, 404);
          await assertCounted(s.running, before, { requests: 1, exceptions: 0 });
        });
      });

      describe('when a handler answers 500 itself', () => {
        it('should count the request and one exception', async () => {
          const before = await current(s.running);
          const response = await s.sameAsPlain('/fail');
          assert.equal(response.status, 500);
          assert.equal(response.body, 'failed');
          await assertCounted(s.running, before, { requests: 1, exceptions: 1 });
        });
      });

      describe('with and without wsgi-status', () => {
        it('should send the same status, headers and body', async () => {
          for (const route of ['/ok', '/throw', '/reject', '/fail', '/missing', '/stream']) await s.sameAsPlain(route);
        });
      });

      if (framework.name.startsWith('Koa') || framework.name.startsWith('Fastify')) {
        describe('when the handler throws an error with a 4xx status', () => {
          it('should count an exception: the handler threw, whatever the status', async () => {
            const before = await current(s.running);
            const response = await s.sameAsPlain('/throw-400');
            assert.equal(response.status, 400);
            await assertCounted(s.running, before, { requests: 1, exceptions: 1 });
          });
        });
      }

      describe('when closed', () => {
        it('should remove its slot from the file and write no more', async () => {
          await s.close();
          assert.equal(workerOf(readStatus(s.path)), undefined, 'slot removed');
          const text = readFileSync(s.path, 'utf8');
          await sleep(4 * INTERVAL);
          assert.equal(readFileSync(s.path, 'utf8'), text, 'the timer is stopped');
          assert.deepEqual(s.errors, []);
        });
      });
    });
  }
});
