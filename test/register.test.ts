/**
 * Issue 14's acceptance: `wsgi-status/register` around apps that hold no
 * wsgi-status code, in real processes. The fixtures (test/support/processes/register/)
 * are plain JavaScript started from the repository's root, so
 * `wsgi-status/register` resolves as a user's would: the package's own name,
 * through its `exports`, to the built dist/ (`npm test` builds first).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { defaultStatusPath } from '../src/adapters/register-env.ts';
import type { UwsgiDocument, UwsgiWorker } from '../src/model/document.ts';
import { isProcessAlive } from '../src/system/liveness.ts';
import { type ClientResponse, freePort, get, readStatus, sleep, tempDir, until, waitForStatus } from './support/helpers.ts';

const root = new URL('..', import.meta.url).pathname;
const fixtures = join(root, 'test', 'support', 'processes', 'register');
const run = promisify(execFile);
const IMPORT = ['--import', 'wsgi-status/register'];
const sum = (document: UwsgiDocument, key: 'requests' | 'exceptions' | 'tx') =>
  document.workers.reduce((total, worker) => total + worker[key], 0);

interface App {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Env for a fixture: nothing inherited that would make it a PM2 instance or a cluster worker. */
function fixtureEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['NODE_APP_INSTANCE', 'NODE_UNIQUE_ID', 'pm_exec_path', 'NODE_OPTIONS']) delete env[name];
  for (const name of Object.keys(env)) if (name.startsWith('WSGI_STATUS_')) delete env[name];
  // Express prints a handler's error on stderr unless NODE_ENV is "test" or "production".
  return { ...env, NODE_ENV: 'test', ...extra };
}

/**
 * Starts a fixture from the repository's root; resolves with the port it prints once listening.
 * After the test the app is killed and its exit awaited before `cleanup` runs: node:test runs
 * `after` hooks in the order they were added, and a hook that throws (a directory still being
 * written to) skips the ones after it, which would leave the app running and the test hanging.
 */
function start(t: TestContext, args: string[], env: Record<string, string>, cleanup?: () => unknown): Promise<App> {
  const child = spawn(process.execPath, args, { cwd: root, env: fixtureEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
    await cleanup?.();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start: ${stdout}${stderr}`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const match = /\{"port":(\d+)\}/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), stderr: () => stderr, exited });
      }
    });
    void exited.then(({ code }) => reject(new Error(`${args.join(' ')} exited with ${code}: ${stdout}${stderr}`)));
  });
}

/** A request the client gives up on once the app shows it in flight. */
async function abortOnceBusy(port: number, file: string): Promise<void> {
  const { request } = await import('node:http');
  const client = request({ host: '127.0.0.1', port, path: '/abort', agent: false });
  client.on('error', () => {});
  client.end();
  await waitForStatus(file, (d) => d.workers[0]?.in_flight === 1, 10_000);
  client.destroy();
}

describe('wsgi-status/register', () => {
  const cases = [
    { name: 'a node:http app loaded with --import', args: [...IMPORT, 'test/support/processes/register/http.mjs'] },
    { name: 'an Express 5 app loaded with --import', args: [...IMPORT, 'test/support/processes/register/express.mjs'] },
    { name: 'a Hapi app loaded with --import', args: [...IMPORT, 'test/support/processes/register/hapi.mjs'] },
    {
      name: 'the node:http app as CommonJS loaded with --require',
      args: ['--require', 'wsgi-status/register', 'test/support/processes/register/http.cjs'],
    },
  ];
  for (const { name, args } of cases) {
    describe(`when ${name}`, () => {
      it('should count requests, in-flight, busy/idle, 5xx, tx and aborts as the adapters do, and remove the slot on SIGTERM', async (t) => {
        const { dir, cleanup } = tempDir('wsgi-status-register-');
        const file = join(dir, 'status.json');
        const app = await start(t, args, { WSGI_STATUS_FILE: file, WSGI_STATUS_INTERVAL: '50' }, cleanup);
        // Before any request: one idle worker, its listening address in sockets.
        const idle = await waitForStatus(file, (d) => d.workers.length === 1, 10_000);
        assert.equal(idle.workers[0].pid, app.child.pid);
        assert.equal(idle.workers[0].status, 'idle');
        assert.equal(idle.workers[0].requests, 0);
        assert.deepEqual(
          idle.sockets.map((s) => s.name),
          [`127.0.0.1:${app.port}`],
        );

        const responses: ClientResponse[] = [];
        for (let i = 0; i < 5; i++) responses.push(await get(app.port, '/?secret=1'));
        responses.push(await get(app.port, '/fail'));
        assert.deepEqual(
          responses.map((r) => r.status),
          [200, 200, 200, 200, 200, 500],
        );
        const counted = await waitForStatus(file, (d) => d.workers[0]?.requests === 6, 10_000);
        assert.equal(counted.workers[0].exceptions, 1, 'the 5xx is an exception');

        // A request held open: busy, in flight, its path without the query.
        const held = get(app.port, '/hold?token=x');
        const busy = await waitForStatus(file, (d) => d.workers[0]?.status === 'busy', 10_000);
        const worker = busy.workers[0] as UwsgiWorker & { in_flight: number; uri?: string };
        assert.equal(worker.in_flight, 1);
        assert.equal(worker.uri, '/hold');
        responses.push(await get(app.port, '/release'), await held);
        await waitForStatus(file, (d) => d.workers[0]?.requests === 8 && d.workers[0].status === 'idle', 10_000);

        // A client that goes away: counted once, with nothing written.
        await abortOnceBusy(app.port, file);
        const done = await waitForStatus(file, (d) => d.workers[0]?.requests === 9 && d.workers[0].in_flight === 0, 10_000);
        assert.equal(done.workers[0].exceptions, 1);
        // One connection per request (no agent): tx is every byte the clients received.
        assert.equal(
          done.workers[0].tx,
          responses.reduce((total, r) => total + r.bytes, 0),
        );
        assert.equal(app.stderr(), '', 'nothing on stderr');

        app.child.kill('SIGTERM');
        await app.exited;
        // The exit hook hands the slot back at once: a cheap row keeping its counters (issue 12).
        const left = readStatus(file).workers;
        assert.deepEqual(
          left.map((w) => [w.id, w.pid, w.status, w.accepting, w.requests, w.exceptions]),
          [[1, 0, 'cheap', 0, 9, 1]],
          'the exit hook leaves the slot cheap, with its counters',
        );
      });
    });
  }

  describe('when a node:cluster app with 4 workers runs with NODE_OPTIONS=--import wsgi-status/register', () => {
    it('should list 4 idle workers before the first request, the primary as pid only, and count every response', async (t) => {
      const { dir, cleanup } = tempDir('wsgi-status-register-');
      const file = join(dir, 'status.json');
      let workerPids: number[] = [];
      // The workers leave once the killed primary's IPC channel closes; the directory goes after them.
      const afterWorkers = async () => {
        await until(() => workerPids.every((pid) => !isProcessAlive(pid)), 'the workers to exit', 10_000).catch(() => {
          for (const pid of workerPids) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
        });
        cleanup();
      };
      const app = await start(
        t,
        ['test/support/processes/register/cluster.mjs'],
        {
          WSGI_STATUS_FILE: file,
          WSGI_STATUS_INTERVAL: '250',
          NODE_OPTIONS: IMPORT.join(' '),
        },
        afterWorkers,
      );
      const before = await waitForStatus(file, (d) => d.workers.length === 4, 15_000);
      workerPids = before.workers.map((w) => w.pid);
      assert.deepEqual(
        before.workers.map((w) => w.id),
        [1, 2, 3, 4],
      );
      assert.ok(before.workers.every((w) => w.status === 'idle' && w.requests === 0));
      assert.equal(before.pid, app.child.pid, 'the primary is the top-level pid');
      assert.ok(!before.workers.some((w) => w.pid === app.child.pid), 'the primary is never a worker');
      assert.deepEqual(
        before.sockets.map((s) => s.name),
        [`127.0.0.1:${app.port}`],
      );

      const agent = new Agent({ keepAlive: true, maxSockets: 8 });
      t.after(() => agent.destroy());
      let received = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 25; i++) if ((await get(app.port, '/', { agent })).status === 200) received++;
        }),
      );
      assert.equal(received, 200);
      const after = await waitForStatus(file, (d) => sum(d, 'requests') >= received, 10_000);
      await sleep(300); // a late extra count would show by now
      assert.equal(sum(readStatus(file), 'requests'), received);
      assert.ok(!after.workers.some((w) => w.pid === app.child.pid));
      // Four writers on a loaded machine may see the lock busy (reported once per episode); nothing else.
      const lines = app
        .stderr()
        .split('\n')
        .filter((line) => line !== '' && !/ stayed busy; tick skipped$/.test(line));
      assert.deepEqual(lines, []);
    });
  });

  describe('when a script that serves no HTTP runs with NODE_OPTIONS=--import wsgi-status/register', () => {
    it('should leave no slot, no file and no directory', async (t) => {
      const { dir, cleanup } = tempDir('wsgi-status-register-');
      t.after(cleanup);
      const file = join(dir, 'app', 'status.json');
      const { stdout, stderr } = await run(process.execPath, ['test/support/processes/register/no-http.mjs'], {
        cwd: root,
        env: fixtureEnv({ WSGI_STATUS_FILE: file, NODE_OPTIONS: IMPORT.join(' ') }),
        timeout: 20_000,
      });
      assert.equal(stdout, 'done\n');
      assert.equal(stderr, '');
      assert.deepEqual(readdirSync(dir), []);
    });
  });

  describe('when the Express app also mounts the wsgi-status middleware on the same file', () => {
    it('should count each request once', async (t) => {
      const { dir, cleanup } = tempDir('wsgi-status-register-');
      const file = join(dir, 'status.json');
      const app = await start(
        t,
        [...IMPORT, 'test/support/processes/register/express.mjs'],
        {
          WSGI_STATUS_FILE: file,
          WITH_MIDDLEWARE: '1',
        },
        cleanup,
      );
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      t.after(() => agent.destroy());
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = 0; i < 10; i++) assert.equal((await get(app.port, '/', { agent })).status, 200);
        }),
      );
      await get(app.port, '/fail');
      await waitForStatus(file, (d) => d.workers[0]?.requests >= 41, 10_000);
      await sleep(300);
      const document = readStatus(file);
      assert.equal(document.workers.length, 1);
      assert.equal(document.workers[0].requests, 41);
      assert.equal(document.workers[0].exceptions, 1);
      assert.equal(app.stderr(), '', 'the same interval from the environment and the code: nothing to warn about');
    });
  });

  describe('when the environment holds bad values', () => {
    it('should say so in one line on stderr for WSGI_STATUS_INTERVAL=abc and serve every request', async (t) => {
      const { dir, cleanup } = tempDir('wsgi-status-register-');
      const file = join(dir, 'status.json');
      const app = await start(
        t,
        [...IMPORT, 'test/support/processes/register/http.mjs'],
        {
          WSGI_STATUS_FILE: file,
          WSGI_STATUS_INTERVAL: 'abc',
        },
        cleanup,
      );
      for (let i = 0; i < 20; i++) assert.equal((await get(app.port, '/')).status, 200);
      await waitForStatus(file, (d) => d.workers[0]?.requests === 20, 10_000);
      const lines = app.stderr().trim().split('\n');
      assert.equal(lines.length, 1, app.stderr());
      assert.match(lines[0], /^wsgi-status\/register: ignoring WSGI_STATUS_INTERVAL="abc" \(.+\); using 1000 ms$/);
    });

    it('should report an unwritable file in one line on stderr and serve every request', async (t) => {
      const { dir, cleanup } = tempDir('wsgi-status-register-');
      // A path under a regular file cannot be created, not even by root.
      writeFileSync(join(dir, 'not-a-directory'), '');
      const file = join(dir, 'not-a-directory', 'status.json');
      const app = await start(
        t,
        [...IMPORT, 'test/support/processes/register/http.mjs'],
        {
          WSGI_STATUS_FILE: file,
          WSGI_STATUS_INTERVAL: '20',
        },
        cleanup,
      );
      let served = 0;
      for (let i = 0; i < 40; i++) if ((await get(app.port, '/')).status === 200) served++;
      assert.equal(served, 40);
      await until(() => app.stderr() !== '', 'the report on stderr');
      await sleep(200); // several more failed ticks: still one line
      const lines = app.stderr().trim().split('\n');
      assert.equal(lines.length, 1, app.stderr());
      assert.match(lines[0], /^wsgi-status\/register: cannot update .*not-a-directory\/status\.json/);
      assert.equal((await get(app.port, '/')).status, 200);
    });

    it('should say so for a bad WSGI_STATUS_STATS_HTTP and a bad WSGI_STATUS_STATS, and still count', async (t) => {
      const { dir, cleanup } = tempDir('wsgi-status-register-');
      const file = join(dir, 'status.json');
      const app = await start(
        t,
        [...IMPORT, 'test/support/processes/register/http.mjs'],
        {
          WSGI_STATUS_FILE: file,
          WSGI_STATUS_STATS: 'localhost:99999',
          WSGI_STATUS_STATS_HTTP: 'maybe',
        },
        cleanup,
      );
      assert.equal((await get(app.port, '/')).status, 200);
      await waitForStatus(file, (d) => d.workers[0]?.requests === 1, 10_000);
      const lines = app.stderr().trim().split('\n');
      assert.equal(lines.length, 2, app.stderr());
      assert.match(lines[0], /^wsgi-status\/register: ignoring WSGI_STATUS_STATS="localhost:99999" .*; no stats server$/);
      assert.match(lines[1], /^wsgi-status\/register: ignoring WSGI_STATUS_STATS_HTTP="maybe" \(must be 1 or 0\); using 0$/);
    });
  });

  describe('when WSGI_STATUS_FILE is unset', () => {
    it('should count into the documented default: a private directory per user, a file per app', async (t) => {
      const { dir, cleanup } = tempDir('wsgi-status-register-');
      // PM2's pm_exec_path names the app when present: a unique one keeps this test's file its own.
      const env = { pm_exec_path: join(dir, 'my app.js') };
      const file = defaultStatusPath({ ...env });
      const removeAll = () => {
        rmSync(file, { force: true });
        try {
          rmdirSync(join(file, '..')); // only if no other app's file is in it
        } catch {}
        cleanup();
      };
      assert.match(file, /\/wsgi-status-\d+\/my_app-[0-9a-f]{8}\.json$/);
      const app = await start(t, [...IMPORT, 'test/support/processes/register/http.mjs'], env, removeAll);
      assert.equal((await get(app.port, '/')).status, 200);
      await waitForStatus(file, (d) => d.workers[0]?.requests === 1, 10_000);
      assert.equal(statSync(join(file, '..')).mode & 0o777, 0o700);
      assert.equal(app.stderr(), '');
    });
  });
});

describe('wsgi-status/register under PM2', () => {
  it('should hold slots 1–4 for 4 cluster instances and keep them, counts not going back, across pm2 reload', async (t) => {
    const { dir, cleanup } = tempDir('wsgi-status-register-pm2-');
    const home = join(dir, 'pm2-home');
    const file = join(dir, 'status.json');
    const pm2 = join(root, 'node_modules', '.bin', 'pm2');
    const env = fixtureEnv({ PM2_HOME: home });
    const pm2Run = (...args: string[]) => run(pm2, args, { cwd: root, env, timeout: 60_000 });
    t.after(async () => {
      await pm2Run('kill').catch(() => {});
      cleanup();
    });
    const port = await freePort();
    const ecosystem = join(dir, 'ecosystem.config.cjs');
    writeFileSync(
      ecosystem,
      `module.exports = { apps: [{
  name: 'register-app',
  script: ${JSON.stringify(join(fixtures, 'pm2-app.cjs'))},
  cwd: ${JSON.stringify(root)},
  exec_mode: 'cluster',
  instances: 4,
  node_args: '--import wsgi-status/register',
  wait_ready: true,
  env: { PORT: '${port}', WSGI_STATUS_FILE: ${JSON.stringify(file)}, WSGI_STATUS_INTERVAL: '200' },
}] };
`,
    );
    await pm2Run('start', ecosystem);
    const ids = (d: UwsgiDocument) => d.workers.map((w) => w.id).join(',');
    const before = await waitForStatus(file, (d) => ids(d) === '1,2,3,4', 30_000);
    for (let i = 0; i < 40; i++) assert.equal((await get(port, '/')).status, 200);
    const counted = await waitForStatus(file, (d) => sum(d, 'requests') === 40, 10_000);
    const oldPids = new Set(before.workers.map((w) => w.pid));

    await pm2Run('reload', 'register-app');
    const after = await waitForStatus(file, (d) => ids(d) === '1,2,3,4' && d.workers.every((w) => !oldPids.has(w.pid)), 30_000);
    for (const worker of after.workers) {
      const earlier = counted.workers.find((w) => w.id === worker.id) as UwsgiWorker;
      assert.ok(worker.requests >= earlier.requests, `slot ${worker.id}: ${worker.requests} < ${earlier.requests}`);
    }
    assert.ok(sum(after, 'requests') >= 40);
  });
});
