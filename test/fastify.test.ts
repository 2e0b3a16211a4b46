/**
 * What only the Fastify plugin does: Fastify 4 and 5 in the matrix's apps
 * (test/support/frameworks-harness.ts), and the plugin's set-up.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Fastify5 from 'fastify';
import Fastify4 from 'fastify4';
import fastifyStatus from '../src/adapters/fastify.ts';
import { assertCounted, comparable, current, FRAMEWORKS, INTERVAL, post, useApp } from './support/frameworks-harness.ts';
import { tempDir } from './support/helpers.ts';

describe('fastify.register(wsgiStatus, options) in a Fastify app', { concurrency: 2 }, () => {
  for (const framework of FRAMEWORKS.filter((f) => f.name.startsWith('Fastify'))) {
    describe(`${framework.name} ${framework.version}`, { concurrency: 1 }, () => {
      const s = useApp(framework);

      describe('when a route is registered in a nested context', () => {
        it('should count its requests', async () => {
          const before = await current(s.running);
          const response = await s.client.get('/nested/inner/ok');
          assert.equal(response.body, 'nested');
          await assertCounted(s.running, before, { requests: 1 });
        });
      });

      describe('when Fastify answers a malformed URL before any hook runs', () => {
        it('should count the 400 as a request, not an exception', async () => {
          const before = await current(s.running);
          const response = await s.sameAsPlain('/items/%zz');
          assert.equal(response.status, 400);
          assert.match(response.body, /FST_ERR_BAD_URL/);
          await assertCounted(s.running, before, { requests: 1, exceptions: 0 });
        });
      });

      describe('when a request body does not parse', () => {
        it("should count Fastify's 400 as a request, and as an exception as every error its error handler answers", async () => {
          const before = await current(s.running);
          const [response, expected] = await Promise.all([
            post(s.app.port, '/echo', '{not json', 'application/json'),
            post(s.plain.port, '/echo', '{not json', 'application/json'),
          ]);
          assert.deepEqual(comparable(response), comparable(expected));
          assert.equal(response.status, 400);
          await assertCounted(s.running, before, { requests: 1, exceptions: 1 });
        });
      });

      describe('when a request is injected', () => {
        it('should count it', async () => {
          const before = await current(s.running);
          assert.equal(await s.app.inject?.('/ok'), 200);
          await assertCounted(s.running, before, { requests: 1 });
        });
      });
    });
  }
});

// Fastify plugin set-up

for (const [name, createApp] of [
  ['Fastify 4', Fastify4 as unknown as typeof Fastify5],
  ['Fastify 5', Fastify5],
] as const) {
  describe(`fastify.register(wsgiStatus, options) on ${name}`, () => {
    const { dir, cleanup } = tempDir();
    after(cleanup);

    describe('when path is missing or not a string', () => {
      it('should fail register with a TypeError naming the option', async () => {
        for (const [options, got] of [
          [{}, 'undefined'],
          [{ path: 42 }, '42'],
          [{ path: '' }, '""'],
        ] as const) {
          const app = createApp();
          app.register(fastifyStatus, options as { path: string });
          await assert.rejects(async () => app.ready(), {
            name: 'TypeError',
            message: `wsgi-status: option "path" must be a non-empty file path string, got ${got}`,
          });
          await app.close();
        }
      });
    });

    describe('when an option is unknown or invalid', () => {
      it('should fail register naming it', async () => {
        const path = join(dir, 'invalid.json');
        const cases = [
          [
            { path, bogus: 1 },
            { name: 'TypeError', message: 'wsgi-status: unknown option "bogus"' },
          ],
          [
            { path, interval: 'fast' },
            { name: 'TypeError', message: 'wsgi-status: option "interval" must be an integer, got "fast"' },
          ],
        ] as const;
        for (const [options, expected] of cases) {
          const app = createApp();
          app.register(fastifyStatus, options as unknown as { path: string });
          await assert.rejects(async () => app.ready(), expected);
          await app.close();
        }
      });
    });

    describe("when given Fastify's own register options", () => {
      it('should accept them and expose the monitor as fastify.wsgiStatus', async () => {
        const path = join(dir, 'prefix.json');
        const app = createApp();
        await app.register(fastifyStatus, { path, interval: INTERVAL, prefix: '/ignored', logLevel: 'warn' });
        assert.equal(app.wsgiStatus.path, path);
        assert.equal(app.wsgiStatus.options.interval, INTERVAL);
        await app.close();
      });
    });

    describe('when registered twice on one instance', () => {
      it('should fail the second registration', async () => {
        const app = createApp();
        app.register(fastifyStatus, { path: join(dir, 'twice-1.json') });
        app.register(fastifyStatus, { path: join(dir, 'twice-2.json') });
        await assert.rejects(async () => app.ready(), /already registered/);
        await app.close();
        // Whether a failed boot runs onClose differs between versions: stop the first monitor either way.
        await app.wsgiStatus.close();
      });
    });
  });
}
