/**
 * Issue 5: the uWSGI-compatible stats server, in-process and under
 * node:cluster. Real sockets, real processes, the captures of a real uWSGI
 * 2.0.21 as the reference for bytes on the wire.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { instrument } from '../src/adapters/http.ts';
import type { UwsgiDocument } from '../src/model/document.ts';
import { WsgiStatusMonitor } from '../src/monitor.ts';
import { parseStatsAddress } from '../src/server/address.ts';
import { type StatsListenError, StatsServer } from '../src/server/stats-server.ts';
import { Children } from './support/children.ts';
import { closeServer, deferred, get, listen, sleep, tempDir, waitForStatus } from './support/helpers.ts';
import { worldReadableCopy } from './support/private-copy.ts';
import { LineReader, readRaw, strictDecode } from './support/stats-helpers.ts';

const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url));
const HTTP_CAPTURE = fixture('uwsgi-2.0.21-stats-http-response.raw');
const HEAD_END = HTTP_CAPTURE.indexOf('\r\n\r\n') + 4;
const RAW_CAPTURE = fixture('uwsgi-2.0.21-stats-raw.json');

/** A provider serving a fixed document (uWSGI's own data, so the bytes can be compared with its capture). */
const constant = (document: object) => async () => document as UwsgiDocument;

/** A socket file that nobody listens on, as a crashed process leaves it. */
async function makeStaleSocket(path: string): Promise<void> {
  const server = createServer();
  const live = `${path}.live`;
  await new Promise<void>((resolve) => server.listen(live, resolve));
  renameSync(live, path);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(lstatSync(path).isSocket());
}

function listenTcp(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

describe('StatsServer', () => {
  const { dir, cleanup } = tempDir('wsgi-status-stats-');
  after(cleanup);

  describe('when serving raw on a unix socket', () => {
    it('should write exactly what uWSGI writes, then close, without waiting for input', async () => {
      const path = join(dir, 'raw.sock');
      const server = new StatsServer({ address: path, provider: constant(JSON.parse(RAW_CAPTURE.toString('utf8'))) });
      await server.listen();
      try {
        // The client sends nothing at all (as Netdata's collector does) and still gets the document and EOF.
        const { data } = await readRaw({ path });
        assert.ok(data.equals(RAW_CAPTURE), 'byte-identical to uwsgi-2.0.21-stats-raw.json');
      } finally {
        await server.close();
      }
    });

    it('should give the socket mode 0660 by default, or the mode asked for', async () => {
      const first = join(dir, 'mode-default.sock');
      const second = join(dir, 'mode-0600.sock');
      const a = new StatsServer({ address: first, provider: constant({}) });
      const b = new StatsServer({ address: second, provider: constant({}), mode: 0o600 });
      await Promise.all([a.listen(), b.listen()]);
      try {
        assert.equal(statSync(first).mode & 0o777, 0o660);
        assert.equal(statSync(second).mode & 0o777, 0o600);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('should remove its socket file on close()', async () => {
      const path = join(dir, 'closing.sock');
      const server = new StatsServer({ address: path, provider: constant({}) });
      await server.listen();
      await server.close();
      assert.throws(() => lstatSync(path), { code: 'ENOENT' });
    });
  });

  describe('when serving raw on TCP', () => {
    it('should write exactly what uWSGI writes on 127.0.0.1 and on ::1', async () => {
      for (const host of ['127.0.0.1', '[::1]']) {
        const server = new StatsServer({ address: `${host}:0`, provider: constant(JSON.parse(RAW_CAPTURE.toString('utf8'))) });
        await server.listen();
        try {
          assert.equal(server.address.kind, 'tcp');
          const { port } = server.address as { port: number };
          assert.ok(port > 0);
          const { data } = await readRaw({ host: host.replace(/[[\]]/g, ''), port });
          assert.ok(data.equals(RAW_CAPTURE), `byte-identical over ${host}`);
        } finally {
          await server.close();
        }
      }
    });

    it('should still answer in full when the client sends something first', async () => {
      const server = new StatsServer({ address: '127.0.0.1:0', provider: constant(JSON.parse(RAW_CAPTURE.toString('utf8'))) });
      await server.listen();
      try {
        const { port } = server.address as { port: number };
        const { data } = await readRaw({ host: '127.0.0.1', port }, { send: 'GET / HTTP/1.0\r\n\r\n' });
        assert.ok(data.equals(RAW_CAPTURE));
      } finally {
        await server.close();
      }
    });
  });

  describe('when serving HTTP (statsHttp)', () => {
    const body = JSON.parse(HTTP_CAPTURE.subarray(HEAD_END).toString('utf8'));

    it("should answer byte for byte as uWSGI's --stats-http capture, over TCP and a unix socket", async () => {
      const tcp = new StatsServer({ address: '127.0.0.1:0', http: true, provider: constant(body) });
      const unix = new StatsServer({ address: join(dir, 'http.sock'), http: true, provider: constant(body) });
      await Promise.all([tcp.listen(), unix.listen()]);
      try {
        const requestHead = 'GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n';
        for (const target of [
          { host: '127.0.0.1', port: (tcp.address as { port: number }).port },
          { path: join(dir, 'http.sock') },
        ]) {
          const { data } = await readRaw(target, { send: requestHead });
          // Status line and header block identical to the capture (order included); then the body.
          assert.equal(data.subarray(0, HEAD_END).toString('latin1'), HTTP_CAPTURE.subarray(0, HEAD_END).toString('latin1'));
          assert.ok(data.equals(HTTP_CAPTURE), 'the whole response is byte-identical to the capture');
        }
      } finally {
        await Promise.all([tcp.close(), unix.close()]);
      }
    });

    it('should be readable by an ordinary HTTP client (node:http)', async () => {
      const server = new StatsServer({ address: '127.0.0.1:0', http: true, provider: constant(body) });
      await server.listen();
      try {
        const { port } = server.address as { port: number };
        const response = await get(port, '/anything');
        assert.equal(response.status, 200);
        assert.equal(response.headers['content-type'], 'application/json');
        assert.equal(response.headers['access-control-allow-origin'], '*');
        assert.deepEqual(JSON.parse(response.body), body);
      } finally {
        await server.close();
      }
    });

    it('should answer a route by its exact path, and the JSON on every other path', async () => {
      const routes = new Map([
        [
          '/text',
          {
            contentType: 'text/plain; charset=utf-8',
            headers: { 'X-Test': 'yes' },
            body: async ({ document, server }: { document: () => Promise<{ workers: unknown[] }>; server: string }) =>
              `${(await document()).workers.length} workers at ${server}\n`,
          },
        ],
      ]);
      const server = new StatsServer({ address: '127.0.0.1:0', http: true, provider: constant(body), routes });
      await server.listen();
      try {
        const { port } = server.address as { port: number };
        const routed = await get(port, '/text?x=1');
        assert.equal(routed.status, 200);
        assert.equal(routed.headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(routed.headers['x-test'], 'yes');
        assert.equal(routed.body, `${body.workers.length} workers at 127.0.0.1:${port}\n`);
        for (const path of ['/', '/text/', '/textx', '/other']) {
          const { data } = await readRaw({ host: '127.0.0.1', port }, { send: `GET ${path} HTTP/1.0\r\n\r\n` });
          assert.equal(
            data.subarray(0, HEAD_END).toString('latin1'),
            HTTP_CAPTURE.subarray(0, HEAD_END).toString('latin1'),
            path,
          );
        }
      } finally {
        await server.close();
      }
    });

    it('should drop a client whose head never ends in time, or is too large', async () => {
      const server = new StatsServer({
        address: '127.0.0.1:0',
        http: true,
        provider: constant(body),
        headTimeout: 300,
        maxHeadBytes: 1024,
      });
      await server.listen();
      try {
        const port = (server.address as { port: number }).port;
        const silent = await readRaw({ host: '127.0.0.1', port }, { timeoutMs: 5000 });
        assert.equal(silent.data.length, 0, 'nothing sent to a client that never finished its head');
        assert.ok(silent.ms >= 250, `closed after the head timeout, not before (${silent.ms} ms)`);
        const huge = await readRaw({ host: '127.0.0.1', port }, { send: `GET / HTTP/1.0\r\nX: ${'a'.repeat(4096)}` });
        assert.equal(huge.data.length, 0, 'nothing sent to a client with a head over the limit');
      } finally {
        await server.close();
      }
    });
  });

  describe('when a client connects and sends nothing', () => {
    for (const http of [false, true]) {
      it(`should not delay a second client by more than 100 ms (${http ? 'HTTP' : 'raw'})`, async (t) => {
        const server = new StatsServer({
          address: join(dir, `silent-${http}.sock`),
          http,
          provider: constant(JSON.parse(RAW_CAPTURE.toString('utf8'))),
        });
        await server.listen();
        const silent: Socket[] = [];
        try {
          // Several silent clients that neither send nor read.
          for (let i = 0; i < 5; i++) {
            const socket = connect({ path: join(dir, `silent-${http}.sock`) });
            socket.pause();
            socket.on('error', () => undefined);
            silent.push(socket);
          }
          await Promise.all(silent.map((socket) => new Promise((resolve) => socket.once('connect', resolve))));
          // The median of several tries, so one scheduling hiccup on a shared machine does not decide.
          const times: number[] = [];
          for (let i = 0; i < 7; i++) {
            const { data, ms } = await readRaw(
              { path: join(dir, `silent-${http}.sock`) },
              http ? { send: 'GET / HTTP/1.0\r\n\r\n' } : {},
            );
            assert.ok(data.length > 3000);
            times.push(ms);
          }
          times.sort((a, b) => a - b);
          t.diagnostic(`second client, 5 silent ones connected: median ${times[3].toFixed(1)} ms, max ${times[6].toFixed(1)} ms`);
          assert.ok(times[3] < 100, `median ${times[3].toFixed(1)} ms (all: ${times.map((t) => t.toFixed(1)).join(', ')})`);
        } finally {
          for (const socket of silent) socket.destroy();
          await server.close();
        }
      });
    }
  });

  describe('when something is already at the address', () => {
    it('should replace a stale socket file left by a crashed run', async () => {
      const path = join(dir, 'stale.sock');
      await makeStaleSocket(path);
      const server = new StatsServer({ address: path, provider: constant({ workers: [] }) });
      await server.listen();
      try {
        const { data } = await readRaw({ path });
        assert.deepEqual(JSON.parse(data.toString()), { workers: [] });
      } finally {
        await server.close();
      }
    });

    it('should refuse a regular file and leave it untouched', async () => {
      const path = join(dir, 'regular.sock');
      writeFileSync(path, 'precious');
      const server = new StatsServer({ address: path, provider: constant({}) });
      await assert.rejects(server.listen(), (error: StatsListenError) => {
        assert.equal(error.code, 'EEXIST');
        assert.match(error.message, /regular\.sock: a file that is not a socket is in the way \(left untouched\)/);
        return true;
      });
      assert.equal(readFileSync(path, 'utf8'), 'precious');
    });

    it('should refuse a path in a missing directory', async () => {
      const server = new StatsServer({ address: join(dir, 'missing', 'stats.sock'), provider: constant({}) });
      await assert.rejects(server.listen(), { code: 'ENOENT', message: /the directory .*missing does not exist/ });
    });

    it('should refuse a socket another live server listens on, and leave it working', async () => {
      const path = join(dir, 'taken.sock');
      const other = new StatsServer({ address: path, provider: constant({ workers: ['other'] }) });
      await other.listen();
      try {
        const server = new StatsServer({ address: path, provider: constant({}) });
        await assert.rejects(server.listen(), { code: 'EADDRINUSE' });
        const { data } = await readRaw({ path });
        assert.deepEqual(JSON.parse(data.toString()), { workers: ['other'] });
      } finally {
        await other.close();
      }
    });

    it('should refuse a TCP port already in use', async () => {
      const taken = createServer();
      const port = await listenTcp(taken);
      try {
        const server = new StatsServer({ address: `127.0.0.1:${port}`, provider: constant({}) });
        await assert.rejects(server.listen(), { code: 'EADDRINUSE', message: /127\.0\.0\.1:\d+: address already in use/ });
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
    });
  });

  describe('when the provider fails', () => {
    it('should report it, close a raw client without data, and answer 500 over HTTP', async () => {
      const errors: Error[] = [];
      const failing = async (): Promise<UwsgiDocument> => {
        throw new Error('file gone bad');
      };
      const raw = new StatsServer({ address: '127.0.0.1:0', provider: failing, onError: (e) => errors.push(e) });
      const http = new StatsServer({ address: '127.0.0.1:0', http: true, provider: failing, onError: (e) => errors.push(e) });
      await Promise.all([raw.listen(), http.listen()]);
      try {
        const a = await readRaw({ host: '127.0.0.1', port: (raw.address as { port: number }).port });
        assert.equal(a.data.length, 0);
        const b = await readRaw(
          { host: '127.0.0.1', port: (http.address as { port: number }).port },
          { send: 'GET / HTTP/1.0\r\n\r\n' },
        );
        assert.match(b.data.toString(), /^HTTP\/1\.0 500 /);
        assert.deepEqual(
          errors.map((e) => e.message),
          ['file gone bad', 'file gone bad'],
        );
      } finally {
        await Promise.all([raw.close(), http.close()]);
      }
    });
  });
});

describe('parseStatsAddress(address)', () => {
  it("should read uWSGI's --stats syntax", () => {
    assert.deepEqual(parseStatsAddress('/run/app/stats.sock'), { kind: 'unix', path: '/run/app/stats.sock' });
    assert.deepEqual(parseStatsAddress('unix:///run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
    assert.deepEqual(parseStatsAddress('127.0.0.1:1717'), { kind: 'tcp', host: '127.0.0.1', port: 1717 });
    assert.deepEqual(parseStatsAddress('tcp://localhost:1717'), { kind: 'tcp', host: 'localhost', port: 1717 });
    assert.deepEqual(parseStatsAddress(':1717'), { kind: 'tcp', host: '0.0.0.0', port: 1717 });
    assert.deepEqual(parseStatsAddress('[::1]:1717'), { kind: 'tcp', host: '::1', port: 1717 });
    assert.equal((parseStatsAddress('stats.sock') as { path: string }).path, join(process.cwd(), 'stats.sock'));
  });

  it('should reject what it cannot read, naming the option', () => {
    assert.throws(() => parseStatsAddress(''), { name: 'TypeError', message: /option "stats"/ });
    assert.throws(() => parseStatsAddress(1717), { name: 'TypeError', message: /option "stats"/ });
    assert.throws(() => parseStatsAddress('127.0.0.1:http'), { name: 'TypeError', message: /numeric port/ });
    assert.throws(() => parseStatsAddress('127.0.0.1:70000'), { name: 'RangeError', message: /above 65535/ });
    assert.throws(() => parseStatsAddress('::1:1717'), { name: 'TypeError', message: /\[::1\]:1717/ });
    assert.throws(() => parseStatsAddress('http://127.0.0.1:1717'), { name: 'TypeError', message: /statsHttp/ });
    assert.throws(() => parseStatsAddress('/run/app/'), { name: 'TypeError', message: /not a directory/ });
    // libuv would bind a silently truncated name.
    assert.throws(() => parseStatsAddress(`/tmp/${'a'.repeat(120)}.sock`), {
      name: 'RangeError',
      message: /limited to 107 bytes/,
    });
  });
});

describe('strictDecode(text) (the Go readers)', () => {
  it("should accept uWSGI's own documents", () => {
    for (const name of ['raw', 'busy-raw', 'queued-raw', 'threads-busy-raw', 'cheap-minified-raw']) {
      strictDecode(fixture(`uwsgi-2.0.21-stats-${name}.json`).toString('utf8'));
    }
  });

  it('should reject what makes Telegraf or uwsgi_exporter fail the whole decode', () => {
    const text = RAW_CAPTURE.toString('utf8');
    for (const [from, to] of [
      ['"harakiri_count":0', '"harakiri_count":0.5'],
      ['"harakiri_count":0', '"harakiri_count":-1'],
      ['"harakiri_count":0', '"harakiri_count":"0"'],
      ['"harakiri_count":0', '"harakiri_count":1e3'],
      ['"harakiri_count":0', '"harakiri_count":null'],
      ['"listen_queue":0', '"listen_queue":9007199254740993'],
      ['"status":"idle"', '"status":1'],
      ['"workers":[', '"workerz":['],
    ]) {
      assert.throws(() => strictDecode(text.replace(from, to)), TypeError, `${from} -> ${to}`);
    }
  });
});

describe('WsgiStatusMonitor with the stats option', () => {
  const children = new Children();
  afterEach(() => children.killAll());
  const { dir, cleanup } = tempDir('wsgi-status-monitor-stats-');
  after(cleanup);

  describe('when options are invalid', () => {
    it('should throw at construction, naming the option', () => {
      const file = join(dir, 'options.json');
      assert.throws(() => new WsgiStatusMonitor(file, { stats: '' }), { name: 'TypeError', message: /option "stats"/ });
      assert.throws(() => new WsgiStatusMonitor(file, { stats: 'localhost:99999' }), { name: 'RangeError', message: /"stats"/ });
      assert.throws(() => new WsgiStatusMonitor(file, { stats: '/tmp/x.sock', statsHttp: 'yes' as unknown as boolean }), {
        name: 'TypeError',
        message: /option "statsHttp" must be a boolean/,
      });
      assert.throws(() => new WsgiStatusMonitor(file, { stats: '/tmp/x.sock', statsMode: 0o1777 }), {
        name: 'RangeError',
        message: /option "statsMode" must be between 0 and 511/,
      });
      assert.throws(() => new WsgiStatusMonitor(file, { statsMode: 1.5 }), { name: 'TypeError', message: /"statsMode"/ });
    });

    it('should throw a TypeError naming statsHttp or statsMode given without stats', () => {
      const file = join(dir, 'options.json');
      assert.throws(() => new WsgiStatusMonitor(file, { statsHttp: true }), {
        name: 'TypeError',
        message: 'wsgi-status: option "statsHttp" needs the "stats" option (the stats server\'s address)',
      });
      assert.throws(() => new WsgiStatusMonitor(file, { statsMode: 0o600 }), {
        name: 'TypeError',
        message: 'wsgi-status: option "statsMode" needs the "stats" option (the stats server\'s address)',
      });
      // Asks for nothing: valid, as `statsHttp: process.env.X === '1'` must be.
      const monitor = new WsgiStatusMonitor(file, { statsHttp: false });
      assert.equal(monitor.stats, null);
      return monitor.close();
    });
  });

  describe('when the app is idle, then busy', () => {
    it('should serve a fresh document every Go reader can decode', async () => {
      const file = join(dir, 'states.json');
      const path = join(dir, 'states.sock');
      const hold = deferred();
      const server = createHttpServer(async (req, res) => {
        if (req.url?.startsWith('/held')) await hold.promise;
        res.end('ok');
      });
      // A long interval: what the document shows must come from memory at answer time, not from a tick.
      const errors: Error[] = [];
      const status = instrument(server, file, { interval: 60_000, stats: path, onError: (error) => errors.push(error) });
      const port = await listen(server);
      try {
        await status.monitor.stats?.listen();
        for (let i = 0; i < 3; i++) await get(port);

        const idle = strictDecode((await readRaw({ path })).data.toString('utf8'), { ours: true }) as unknown as UwsgiDocument;
        assert.equal(idle.workers.length, 1);
        assert.equal(idle.workers[0].pid, process.pid);
        assert.equal(idle.workers[0].status, 'idle');
        assert.equal(idle.workers[0].requests, 3);
        assert.deepEqual(
          idle.sockets.map((s) => s.name),
          [`127.0.0.1:${port}`],
        );

        const pending = get(port, '/held?secret=1');
        await sleep(100);
        const busy = strictDecode((await readRaw({ path })).data.toString('utf8'), { ours: true }) as unknown as UwsgiDocument;
        const worker = busy.workers[0];
        assert.equal(worker.status, 'busy');
        assert.equal(worker.cores[0].in_request, 1);
        assert.equal(worker.uri, '/held');
        assert.ok(Number.isSafeInteger(worker.cores[0].req_info.request_start));
        hold.resolve();
        await pending;
      } finally {
        await status.close();
        await closeServer(server);
      }
      assert.throws(() => lstatSync(path), { code: 'ENOENT' }, 'close() removed the socket');
      assert.deepEqual(errors, [], 'nothing reported');
    });
  });

  describe('when the address cannot be used', () => {
    /** An app with a stats address; resolves with the errors reported and whether it kept serving. */
    async function withBadStats(stats: string, file = join(dir, 'bad.json')) {
      const errors: Error[] = [];
      const server = createHttpServer((_req, res) => res.end('ok'));
      const status = instrument(server, file, { interval: 20, stats, onError: (error) => errors.push(error) });
      const port = await listen(server);
      try {
        await status.monitor.stats?.listen().catch(() => undefined);
        let ok = 0;
        for (let i = 0; i < 10; i++) if ((await get(port)).body === 'ok') ok++;
        await sleep(100);
        return { errors, ok };
      } finally {
        await status.close();
        await closeServer(server);
      }
    }

    it('should report a missing directory once through onError, and keep serving', async () => {
      const { errors, ok } = await withBadStats(join(dir, 'nowhere', 'stats.sock'));
      assert.equal(ok, 10);
      assert.equal(errors.length, 1, errors.map((e) => e.message).join('; '));
      assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOENT');
      assert.match(errors[0].message, /cannot serve stats on .*nowhere\/stats\.sock: the directory .* does not exist/);
    });

    it('should report a port in use once, and keep serving', async () => {
      const taken = createServer();
      const port = await listenTcp(taken);
      try {
        const { errors, ok } = await withBadStats(`127.0.0.1:${port}`);
        assert.equal(ok, 10);
        assert.deepEqual(
          errors.map((e) => (e as NodeJS.ErrnoException).code),
          ['EADDRINUSE'],
        );
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
    });

    it('should report a regular file at the path once, leave it untouched, and keep serving', async () => {
      const path = join(dir, 'occupied.sock');
      writeFileSync(path, 'not a socket');
      const { errors, ok } = await withBadStats(path);
      assert.equal(ok, 10);
      assert.deepEqual(
        errors.map((e) => (e as NodeJS.ErrnoException).code),
        ['EEXIST'],
      );
      assert.equal(readFileSync(path, 'utf8'), 'not a socket');
    });

    it('should report an unreadable status file once and still serve its own entry', async () => {
      const file = join(dir, 'a-directory.json');
      mkdirSync(file);
      const path = join(dir, 'unreadable.sock');
      const errors: Error[] = [];
      const server = createHttpServer((_req, res) => res.end('ok'));
      const status = instrument(server, file, { interval: 50, stats: path, onError: (error) => errors.push(error) });
      const port = await listen(server);
      try {
        await status.monitor.stats?.listen();
        await get(port);
        for (let i = 0; i < 3; i++) {
          const document = strictDecode((await readRaw({ path })).data.toString('utf8'), {
            ours: true,
          }) as unknown as UwsgiDocument;
          assert.deepEqual(
            document.workers.map((w) => w.pid),
            [process.pid],
          );
        }
        await sleep(150);
        const kinds = errors.map((e) => (e as NodeJS.ErrnoException).code);
        // The writer cannot rename over a directory; the server's reader never opens what is not a regular file.
        assert.deepEqual(kinds.sort(), ['EISDIR', 'ENOTREG'], `one from the writer, one from the server: ${kinds}`);
        assert.equal(new Set(errors.map((e) => e.message)).size, errors.length, 'each kind once');
      } finally {
        await status.close();
        await closeServer(server);
      }
    });

    it('should report EACCES once for a directory the app cannot write', {
      skip: process.getuid?.() !== 0 && 'needs root',
    }, async (t) => {
      // root ignores file modes: run the app as nobody for a real EACCES.
      const locked = join(dir, 'locked');
      mkdirSync(locked, { mode: 0o755 });
      const writable = join(dir, 'writable');
      mkdirSync(writable);
      chmodSync(dir, 0o755);
      chmodSync(writable, 0o777);
      // From a world-readable copy: the checkout may sit in a 0700 directory that nobody cannot read.
      const copy = worldReadableCopy('stats-app.mjs');
      t.after(copy.cleanup);
      const child = children.adopt(
        spawn(process.execPath, [copy.fixture, join(writable, 'status.json'), copy.http], {
          cwd: copy.dir,
          uid: 65534,
          gid: 65534,
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...process.env, STATS: join(locked, 'stats.sock'), HOME: writable },
        }),
      );
      const reader = new LineReader(child);
      const { port } = await reader.waitForJson<{ port: number }>('ready', 20_000);
      assert.equal((await get(port)).body, 'ok');
      await sleep(300);
      const errors = reader.lines.filter((l) => l.includes('"error"')).map((l) => JSON.parse(l) as { code: string });
      assert.deepEqual(
        errors.map((e) => e.code),
        ['EACCES'],
      );
    });
  });
});

describe('the stats socket of a node:cluster app', () => {
  const children = new Children();
  after(() => children.killAll());
  const { dir, cleanup } = tempDir('wsgi-status-cluster-stats-');
  after(cleanup);

  it('should give the same 4 workers on 100 consecutive connections, over one socket, a stale one replaced', async (t) => {
    const path = join(dir, 'stats.sock');
    // A crashed run's socket file: the 4 workers starting together must replace it once, and never each other's.
    await makeStaleSocket(path);
    const child = children.spawnNode(['test/support/processes/stats/cluster.ts', join(dir, 'status.json')], {
      env: { STATS: path },
    });
    const reader = new LineReader(child);
    const { pids, port } = await reader.waitForJson<{ pids: number[]; port: number }>('ready', 30_000);
    assert.equal(pids.length, 4);
    assert.ok(lstatSync(path).isSocket());
    assert.equal(statSync(path).mode & 0o777, 0o660);

    const expected = [...pids].sort((a, b) => a - b);
    // Each worker writes its slot on its first (jittered) tick; from then on every answer must hold all four.
    await waitForStatus(join(dir, 'status.json'), (document) => document.workers.length === 4, 15_000);
    const started = performance.now();
    for (let i = 0; i < 100; i++) {
      const { data } = await readRaw({ path });
      const document = strictDecode(data.toString('utf8'), { ours: true }) as unknown as UwsgiDocument;
      assert.deepEqual(
        document.workers.map((w) => w.id),
        [1, 2, 3, 4],
        `connection ${i}`,
      );
      assert.deepEqual(
        document.workers.map((w) => w.pid).sort((a, b) => a - b),
        expected,
        `connection ${i}`,
      );
      assert.equal(document.pid, child.pid, 'the cluster primary supervises');
      assert.deepEqual(
        document.sockets.map((s) => s.name),
        [`127.0.0.1:${port}`],
      );
    }
    t.diagnostic(`100 connections in ${(performance.now() - started).toFixed(0)} ms`);
    // The app itself still serves through the same primary.
    assert.equal((await get(port)).body, 'ok');
    // (A tick skipped on a busy lock is the file's business; nothing about stats may fail.)
    const errors = reader.lines.filter((l) => l.includes('"error"') && !/stayed busy; tick skipped/.test(l));
    assert.deepEqual(errors, []);
  });
});
