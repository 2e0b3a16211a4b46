/**
 * Issue 2's acceptance: a live Express / node:http app, the real status file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { instrument, wrap } from '../src/adapters/http.ts';
import { wsgiStatus } from '../src/index.ts';
import type { UwsgiDocument } from '../src/model/document.ts';
import { http2Client } from './support/frameworks-harness.ts';
import {
  assertAllUint,
  closeServer,
  deferred,
  get,
  jsonType,
  listen,
  readStatus,
  sleep,
  tempDir,
  waitForStatus,
  workerOf,
} from './support/helpers.ts';
import { worldReadableCopy } from './support/private-copy.ts';

const fixtureDocument = JSON.parse(
  readFileSync(new URL('fixtures/uwsgi-2.0.21-stats-busy.json', import.meta.url), 'utf8'),
) as Record<string, unknown> & { workers: Record<string, unknown>[] };

describe('wsgiStatus(path) in Express', () => {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'status.json');
  const hold = deferred();
  const errors: Error[] = [];
  const middleware = wsgiStatus(file, { interval: 50, onError: (error) => errors.push(error) });
  const app = express();
  app.use(middleware);
  app.get('/', (_req, res) => {
    res.send('hello world');
  });
  app.get('/held', async (_req, res) => {
    await hold.promise;
    res.send('released');
  });
  app.get('/sleep/:ms', async (req, res) => {
    await sleep(Number(req.params.ms));
    res.send('slept');
  });
  app.get('/throw', () => {
    throw new Error('handler failed');
  });
  app.get('/503', (_req, res) => {
    res.status(503).send('unavailable');
  });
  const server = createServer(app);
  let port = 0;

  before(async () => {
    port = await listen(server);
  });
  after(async () => {
    hold.resolve();
    await middleware.close();
    await closeServer(server);
    cleanup();
  });

  it('should write a document with every key and JSON type of a real uWSGI document', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get(port, '/')).status, 200);
    const document = await waitForStatus(file, (d) => (workerOf(d)?.requests ?? 0) >= 3);
    for (const key of Object.keys(fixtureDocument)) {
      assert.ok(key in document, `top-level key ${key}`);
      assert.equal(jsonType((document as unknown as Record<string, unknown>)[key]), jsonType(fixtureDocument[key]), key);
    }
    const worker = workerOf(document) as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(fixtureDocument.workers[0])) {
      assert.ok(key in worker, `worker key ${key}`);
      assert.equal(jsonType(worker[key]), jsonType(value), `worker.${key}`);
    }
    assertAllUint(document);
    const ids = document.workers.map((w) => w.id);
    assert.ok(ids.every((id) => id >= 1));
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(document.sockets[0]?.name, `127.0.0.1:${port}`);
    assert.deepEqual(errors, []);
  });

  it('should show the worker busy with in_flight 1 while a handler is held, then idle with one more request', async () => {
    const before = workerOf(await waitForStatus(file, (d) => workerOf(d)?.status === 'idle'))!;
    const pending = get(port, '/held?token=secret');
    const busy = workerOf(await waitForStatus(file, (d) => workerOf(d)?.status === 'busy', 2 * 50 + 2000))!;
    assert.equal(busy.in_flight, 1);
    assert.equal(busy.cores[0].in_request, 1);
    assert.equal(busy.method, 'GET');
    assert.equal(busy.uri, '/held', 'the path only, never the query string');
    assert.ok(!readFileSync(file, 'utf8').includes('secret'));
    hold.resolve();
    assert.equal((await pending).body, 'released');
    const idle = workerOf(await waitForStatus(file, (d) => workerOf(d)?.status === 'idle'))!;
    assert.equal(idle.requests, before.requests + 1);
    assert.equal(idle.in_flight, 0);
  });

  it('should count a throwing handler and a 5xx response once each in exceptions', async () => {
    const start = workerOf(await waitForStatus(file, (d) => workerOf(d)?.status === 'idle'))!;
    assert.equal((await get(port, '/throw')).status, 500);
    assert.equal((await get(port, '/503')).status, 503);
    assert.equal((await get(port, '/')).status, 200);
    const end = workerOf(await waitForStatus(file, (d) => workerOf(d)!.requests >= start.requests + 3))!;
    assert.equal(end.exceptions, start.exceptions + 2);
    assert.equal(end.apps[0].exceptions, end.exceptions);
  });

  it('should count in tx the bytes the client received, headers and body', async () => {
    const start = workerOf(await waitForStatus(file, (d) => workerOf(d)?.status === 'idle'))!;
    let received = 0;
    for (const path of ['/', '/503', '/sleep/1', '/nope']) received += (await get(port, path)).bytes;
    const end = workerOf(await waitForStatus(file, (d) => workerOf(d)!.requests >= start.requests + 4))!;
    assert.ok(Math.abs(end.tx - start.tx - received) <= 4, `tx grew by ${end.tx - start.tx}, client received ${received}`);
  });

  it("should keep running_time and avg_rt in microseconds, with uWSGI's halving average", async () => {
    const start = workerOf(await waitForStatus(file, (d) => workerOf(d)?.status === 'idle'))!;
    await get(port, '/sleep/200');
    const mid = workerOf(await waitForStatus(file, (d) => workerOf(d)!.requests >= start.requests + 1))!;
    const rt = mid.running_time - start.running_time;
    // libuv's timers run on the loop's cached millisecond clock, so a 200 ms
    // setTimeout can fire up to a millisecond early by performance.now().
    assert.ok(rt >= 198_000 && rt < 2_000_000, `a 200 ms request took ${rt} µs`);
    assert.equal(mid.avg_rt, Math.floor((start.avg_rt + rt) / 2));
  });

  it('should report rss and vsz in bytes and last_spawn as this process start', async () => {
    const worker = workerOf(readStatus(file))!;
    assert.ok(worker.rss > 10 * 1024 * 1024, `rss ${worker.rss}`);
    assert.ok(worker.vsz >= worker.rss);
    const started = (Date.now() - process.uptime() * 1000) / 1000;
    assert.ok(Math.abs(worker.last_spawn - started) <= 2, `last_spawn ${worker.last_spawn}, started ${started}`);
    assert.equal(worker.pid, process.pid);
    assert.equal(readStatus(file).pid, process.pid, 'a lone process is its own supervisor');
  });

  it('should leave the worker idle when a client aborts mid-request', async () => {
    const start = workerOf(await waitForStatus(file, (d) => workerOf(d)?.status === 'idle'))!;
    const socket = connect(port, '127.0.0.1');
    socket.write('GET /sleep/300 HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitForStatus(file, (d) => workerOf(d)?.status === 'busy');
    socket.destroy();
    const end = workerOf(
      await waitForStatus(file, (d) => workerOf(d)?.status === 'idle' && workerOf(d)!.requests > start.requests),
    )!;
    assert.equal(end.in_flight, 0);
    await sleep(400); // the handler finishes writing into the closed socket: nothing is counted twice
    const later = workerOf(await waitForStatus(file, (d) => workerOf(d)!.last_update > end.last_update))!;
    assert.equal(later.requests, end.requests);
    assert.equal(later.in_flight, 0);
  });

  it('should not touch the disk per request: a 2,000-request burst costs one write per tick', async () => {
    const writes = new Set<string>();
    const watcher = watch(dir, (_event, name) => {
      if (name && /^status\.json\.\d+$/.test(String(name))) writes.add(String(name));
    });
    let ticks = 0;
    const onWrite = () => ticks++;
    // Counting starts and stops for both at once; a tick in progress at either edge can differ by one.
    middleware.monitor.on('write', onWrite);
    const started = Date.now();
    let sent = 0;
    const client = async () => {
      while (sent < 2000) {
        sent++;
        await get(port, '/');
      }
    };
    await Promise.all(Array.from({ length: 20 }, client));
    const elapsed = Date.now() - started;
    await sleep(120);
    await middleware.monitor.tick();
    await sleep(20); // let the watcher deliver the last events
    middleware.monitor.off('write', onWrite);
    watcher.close();
    assert.ok(ticks >= 1);
    // One temporary file per write; the watcher may miss the boundaries of the window by one tick each way.
    assert.ok(Math.abs(writes.size - ticks) <= 2, `${writes.size} writes for ${ticks} ticks`);
    assert.ok(writes.size <= Math.ceil(elapsed / 50) + 6, `${writes.size} writes in ${elapsed} ms at a 50 ms interval`);
    // Proportional to time, not to requests: however slow the machine, far fewer writes than requests.
    assert.ok(writes.size < 1000, `${writes.size} writes for 2,000 requests`);
  });
});

describe('instrument(server, path) and wrap(handler, path)', () => {
  it('should count every request of an http.Server, and close with the server', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'status.json');
    const server = createServer((_req, res) => res.end('ok'));
    const status = instrument(server, file, { interval: 50 });
    const port = await listen(server);
    for (let i = 0; i < 5; i++) await get(port, '/');
    const worker = workerOf(await waitForStatus(file, (d) => (workerOf(d)?.requests ?? 0) >= 5))!;
    assert.equal(worker.requests, 5);
    assert.equal(worker.status, 'idle');
    await closeServer(server);
    await status.close();
    assert.equal(workerOf(readStatus(file)), undefined, 'close() removes the slot');
    cleanup();
  });

  it("should add no 'request' listener to an http.Server, and count what 'checkContinue' answers too", async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'status.json');
    const handler = (_req: IncomingMessage, res: ServerResponse) => res.end('ok');
    const server = createServer(handler);
    // Answered here, never through 'request': Node publishes the request all the same.
    server.on('checkContinue', (_req, res) => {
      res.writeContinue();
      res.end('continued');
    });
    const status = instrument(server, file, { interval: 50 });
    assert.deepEqual(server.rawListeners('request'), [handler], "the app's handler alone, untouched");
    const port = await listen(server);
    await get(port, '/');
    const continued = await new Promise<string>((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', path: '/upload', method: 'POST', headers: { expect: '100-continue' } });
      req.on('continue', () => req.end('body'));
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
    });
    assert.equal(continued, 'continued');
    assert.equal(workerOf(await waitForStatus(file, (d) => (workerOf(d)?.requests ?? 0) >= 2))!.requests, 2);
    // Another server in the process is not this monitor's.
    const other = createServer(handler);
    const otherPort = await listen(other);
    await get(otherPort, '/');
    await status.monitor.tick();
    assert.equal(workerOf(readStatus(file))!.requests, 2, "another server's requests are not counted");
    await status.close();
    await get(port, '/');
    assert.equal(status.monitor.snapshot().requests, 2, 'close() stops counting');
    await closeServer(other);
    await closeServer(server);
    cleanup();
  });

  it("should take over an http2 server's lone 'request' listener invisibly, and give it back on close()", async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'status.json');
    const seen: unknown[] = [];
    const handler = function (this: unknown, _req: Http2ServerRequest, res: Http2ServerResponse) {
      seen.push(this);
      res.end('ok');
    };
    const server = createHttp2Server(handler);
    const status = instrument(server, file, { interval: 50 });
    assert.equal(server.listenerCount('request'), 1, 'one listener, so Node calls it directly');
    assert.deepEqual(server.listeners('request'), [handler], "listeners() still shows the app's handler");
    const port = await listen(server as unknown as Server);
    const client = http2Client(port);
    await client.get('/');
    assert.deepEqual(seen, [server], "the handler is called with the server as 'this', as before");
    // A listener added later runs after the monitor began the request.
    const later: string[] = [];
    server.on('request', () => later.push(status.monitor.snapshot().status));
    await client.get('/');
    assert.deepEqual(later, ['busy']);
    assert.equal(workerOf(await waitForStatus(file, (d) => (workerOf(d)?.requests ?? 0) >= 2))!.requests, 2);
    await status.close();
    assert.equal(server.rawListeners('request')[0], handler, 'close() puts the handler back first');
    assert.equal(server.listenerCount('request'), 2);
    await client.get('/');
    assert.equal(seen.length, 3);
    client.close();
    await closeServer(server as unknown as Server);
    cleanup();
  });

  it("should let the app remove its handler, and join an http2 server with several 'request' listeners", async () => {
    const { dir, cleanup } = tempDir();
    const handler = (_req: Http2ServerRequest, res: Http2ServerResponse) => res.end('first');
    const lone = createHttp2Server(handler);
    const removed = instrument(lone, join(dir, 'lone.json'), { interval: 50 });
    lone.removeListener('request', handler);
    assert.equal(lone.listenerCount('request'), 0, 'removeListener(handler) removes it, as with once()');
    await removed.close();
    assert.equal(lone.listenerCount('request'), 0, 'and close() does not bring it back');

    const server = createHttp2Server(handler);
    const other = () => undefined;
    server.on('request', other);
    const status = instrument(server, join(dir, 'status.json'), { interval: 50 });
    assert.equal(server.listenerCount('request'), 3, "the monitor's own listener, first");
    await status.close();
    assert.deepEqual(server.listeners('request'), [handler, other]);
    cleanup();
  });

  it('should count a wrapped handler that throws or rejects, and let the error go on as before', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'status.json');
    const rejections: unknown[] = [];
    const handler = wrap(
      async (req, res) => {
        if (req.url === '/reject') {
          res.statusCode = 400;
          res.end('bad');
          throw new Error('rejected after answering');
        }
        res.end('ok');
      },
      file,
      { interval: 50 },
    );
    const server = createServer((req, res) => {
      (handler(req, res) as Promise<void>).catch((error) => rejections.push(error));
    });
    const port = await listen(server);
    assert.equal((await get(port, '/')).status, 200);
    assert.equal((await get(port, '/reject')).status, 400);
    const worker = workerOf(await waitForStatus(file, (d) => (workerOf(d)?.requests ?? 0) >= 2))!;
    assert.equal(worker.exceptions, 1);
    assert.equal(rejections.length, 1);
    assert.equal((rejections[0] as Error).message, 'rejected after answering');
    await handler.close();
    await closeServer(server);
    cleanup();
  });
});

describe('a reader that never locks', () => {
  it('should never see an invalid document while the writer ticks every 20 ms', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'status.json');
    const server = createServer((_req, res) => res.end('ok'));
    const status = instrument(server, file, { interval: 20 });
    const port = await listen(server);
    await waitForStatus(file, () => true);
    // The reader is its own process, so its tight loop does not starve the writer.
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs'); let reads = 0, bad = 0; const versions = new Set(); const end = Date.now() + 3000;
         while (Date.now() < end) { try { const d = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
           if (!Array.isArray(d.workers)) bad++; else versions.add(d.workers[0] && d.workers[0].last_update); } catch { bad++ } reads++ }
         console.log(JSON.stringify({ reads, bad, versions: versions.size }))`,
        file,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    reader.stdout.on('data', (chunk) => {
      output += chunk;
    });
    let stop = false;
    const load = (async () => {
      while (!stop) await get(port, '/');
    })();
    await new Promise((resolve) => reader.on('exit', resolve));
    stop = true;
    await load;
    const result = JSON.parse(output) as { reads: number; bad: number; versions: number };
    assert.equal(result.bad, 0, `${result.bad} invalid reads of ${result.reads}`);
    assert.ok(result.reads > 1000, `only ${result.reads} reads`);
    assert.ok(result.versions > 5, `the reader saw only ${result.versions} versions: the writer did not tick`);
    await status.close();
    await closeServer(server);
    cleanup();
  });
});

describe('bad status paths and files', () => {
  /** An app whose every request must succeed while the status machinery fails. */
  async function withApp(file: string, check: (errors: Error[], port: number) => Promise<void>) {
    const errors: Error[] = [];
    const middleware = wsgiStatus(file, { interval: 20, onError: (error) => errors.push(error) });
    const app = express();
    app.use(middleware);
    app.get('/', (_req, res) => {
      res.send('ok');
    });
    const server = createServer(app);
    const port = await listen(server);
    try {
      for (let i = 0; i < 20; i++) {
        assert.equal((await get(port, '/')).status, 200);
        await sleep(10);
      }
      await check(errors, port);
    } finally {
      await middleware.close();
      await closeServer(server);
    }
  }

  it('should create a missing directory', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'nested', 'deeper', 'status.json');
    await withApp(file, async (errors) => {
      await waitForStatus(file, (d) => d.workers.length === 1);
      assert.deepEqual(errors, []);
    });
    cleanup();
  });

  it('should report a path that is a directory once, and keep serving', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'status.json');
    mkdirSync(file);
    await withApp(file, async (errors) => {
      await sleep(200);
      assert.equal(errors.length, 1, errors.map((e) => e.message).join('; '));
      assert.match(errors[0].message, /cannot update .*status\.json/);
    });
    cleanup();
  });

  for (const [name, content, kind] of [
    ['garbage', 'garbage \u0000\u0001 not json', /invalid JSON/],
    ['truncated JSON', '{"version":"x","workers":[{"id":1,', /invalid JSON/],
    ['{"workers": 5}', '{"workers": 5}', /did not write/],
  ] as const) {
    it(`should repair a file holding ${name}, report it once and keep serving`, async () => {
      const { dir, cleanup } = tempDir();
      const file = join(dir, 'status.json');
      writeFileSync(file, content);
      await withApp(file, async (errors) => {
        const document: UwsgiDocument = await waitForStatus(file, (d) => Array.isArray(d.workers) && d.workers.length === 1);
        assert.equal(document.workers[0].pid, process.pid);
        await sleep(100);
        assert.equal(errors.length, 1, errors.map((e) => e.message).join('; '));
        assert.match(errors[0].message, kind);
      });
      cleanup();
    });
  }

  it('should report an unwritable path (EACCES) once, and keep serving', async (t) => {
    const { dir, cleanup } = tempDir();
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    chmodSync(dir, 0o777);
    const file = join(locked, 'status.json');
    if (process.getuid?.() === 0) {
      // root ignores file modes: run the app as an unprivileged user for a real EACCES,
      // from a world-readable copy (the checkout may be in a 0700 directory).
      const copy = worldReadableCopy('eacces-app.mjs');
      t.after(copy.cleanup);
      const child = spawn(process.execPath, [copy.fixture, file, copy.http], {
        cwd: copy.dir,
        uid: 65534,
        gid: 65534,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, HOME: dir },
      });
      let output = '';
      child.stdout.on('data', (chunk) => {
        output += chunk;
      });
      const code = await new Promise((resolve) => child.on('exit', resolve));
      assert.equal(code, 0, output);
      const result = JSON.parse(output.trim().split('\n').pop()!) as { ok: number; errors: string[]; codes: string[] };
      assert.equal(result.ok, 20);
      assert.equal(result.errors.length, 1, result.errors.join('; '));
      assert.deepEqual(result.codes, ['EACCES']);
    } else {
      await withApp(file, async (errors) => {
        await sleep(200);
        assert.equal(errors.length, 1);
        assert.equal((errors[0] as NodeJS.ErrnoException).code, 'EACCES');
      });
    }
    cleanup();
  });
});
