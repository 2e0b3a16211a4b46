/**
 * Every runnable example in examples/ is started as a user would (node, the
 * package's own name resolving to the built dist/), sent a request, and
 * stopped; its status file must show the request, then no slot.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort, get, readStatus, sleep, tempDir, waitForStatus } from './support/helpers.ts';
import { readRaw } from './support/stats-helpers.ts';

const examples = new URL('../examples/', import.meta.url).pathname;

/** Starts an example and resolves with its port, from the line it prints once listening. */
function start(file: string, env: Record<string, string>): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const child = spawn(process.execPath, [join(examples, file)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), output: () => output });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code}: ${output}`)));
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('examples/', () => {
  for (const file of ['express.js', 'koa.js', 'fastify.js', 'http.js', 'instrument.js', 'prom-client.js']) {
    describe(`when ${file} runs`, () => {
      it('should count a request in its status file and leave its slot cheap on SIGTERM', async (t) => {
        const { dir, cleanup } = tempDir();
        const statusFile = join(dir, 'status.json');
        const app = await start(file, { PORT: '0', STATUS_FILE: statusFile });
        t.after(() => {
          app.child.kill('SIGKILL');
          cleanup();
        });
        const response = await get(app.port, '/');
        assert.equal(response.status, 200);
        assert.equal(response.body, 'hello\n');
        const document = await waitForStatus(statusFile, (d) => d.workers.some((w) => w.requests >= 1), 10_000);
        assert.equal(document.workers.length, 1);
        assert.equal(document.workers[0].pid, app.child.pid);
        app.child.kill('SIGTERM');
        assert.deepEqual(await exited(app.child), { code: 0, signal: null }, app.output());
        assert.deepEqual(
          readStatus(statusFile).workers.map((w) => [w.id, w.pid, w.status, w.requests]),
          [[1, 0, 'cheap', 1]],
          'on a graceful stop the slot turns cheap, its count kept',
        );
      });
    });
  }
});

describe('examples/cluster.js', () => {
  it('should run its workers in one status file and on one stats socket, and leave every slot cheap on SIGTERM', async (t) => {
    const { dir, cleanup } = tempDir();
    const statusFile = join(dir, 'status.json');
    const statsSocket = join(dir, 'stats.sock');
    const port = await freePort();
    const primary = spawn(process.execPath, [join(examples, 'cluster.js')], {
      env: { ...process.env, PORT: String(port), STATUS_FILE: statusFile, STATS_SOCKET: statsSocket, WORKERS: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      primary.kill('SIGKILL');
      cleanup();
    });
    const document = await waitForStatus(statusFile, (d) => d.workers.length === 2, 15_000);
    assert.deepEqual(
      document.workers.map((w) => w.id),
      [1, 2],
    );
    assert.equal(document.pid, primary.pid, 'the primary is the supervisor');
    for (let i = 0; i < 10; i++) assert.equal((await get(port, '/')).status, 200);
    await waitForStatus(statusFile, (d) => d.workers.reduce((sum, w) => sum + w.requests, 0) === 10, 10_000);
    const served = JSON.parse((await readRaw({ path: statsSocket })).data.toString()) as { workers: { pid: number }[] };
    assert.deepEqual(served.workers.map((w) => w.pid).sort(), document.workers.map((w) => w.pid).sort());
    primary.kill('SIGTERM');
    assert.deepEqual(await exited(primary), { code: 0, signal: null });
    const after = readStatus(statusFile);
    assert.deepEqual(
      after.workers.map((w) => [w.id, w.pid, w.status]),
      [
        [1, 0, 'cheap'],
        [2, 0, 'cheap'],
      ],
    );
    assert.equal(
      after.workers.reduce((sum, w) => sum + w.requests, 0),
      10,
      'every count kept',
    );
  });
});

describe('examples/ecosystem.config.cjs', () => {
  it('should run examples/cluster.js as 4 PM2 cluster instances with a graceful kill_timeout', async () => {
    const { apps } = (await import('../examples/ecosystem.config.cjs')).default as {
      apps: {
        script: string;
        cwd: string;
        exec_mode: string;
        instances: number;
        kill_timeout: number;
        env: Record<string, unknown>;
      }[];
    };
    assert.equal(apps.length, 1);
    assert.equal(apps[0].exec_mode, 'cluster');
    assert.equal(apps[0].instances, 4);
    assert.ok(apps[0].kill_timeout >= 3000);
    assert.ok(existsSync(join(apps[0].cwd, apps[0].script)));
    assert.ok(apps[0].env.STATUS_FILE);
  });
});

describe('examples/demo.js (npm start)', () => {
  it('should say where its file, socket and status page are, show workers busy and idle, and leave nothing behind on Ctrl-C', async (t) => {
    const demo = spawn(process.execPath, [join(examples, 'demo.js')], {
      env: { ...process.env, DEMO_SECONDS: '60' },
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group: a failing run kills the demo and everything it started (workers, top, the page's sidecar).
      detached: true,
    });
    t.after(() => {
      try {
        process.kill(-(demo.pid as number), 'SIGKILL');
      } catch {
        // Already gone.
      }
    });
    let output = '';
    demo.stdout.on('data', (chunk) => {
      output += chunk;
    });
    demo.stderr.on('data', (chunk) => {
      output += chunk;
    });
    // The live view prints a frame a second; wait until workers were seen both busy and idle.
    const deadline = Date.now() + 30_000;
    while (!(/\bbusy\b/.test(frames(output)) && /\bidle\b/.test(frames(output)))) {
      assert.ok(Date.now() < deadline, `no busy and idle workers in the live view:\n${output}`);
      await sleep(200);
    }
    const statusFile = /status file: +(\S+)/.exec(output)?.[1];
    const statsSocket = /stats socket: +(\S+)/.exec(output)?.[1];
    assert.ok(statusFile && existsSync(statusFile), output);
    assert.ok(statsSocket && existsSync(statsSocket), output);
    // The status page's address, served by the demo's HTTP sidecar.
    const pageUrl = /status page: +(http:\/\/127\.0\.0\.1:\d+\/status)\s/.exec(output)?.[1];
    assert.ok(pageUrl, output);
    const page = await fetch(pageUrl);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(await page.text(), /<title>wsgi-status<\/title>/);
    const pids = readStatus(statusFile).workers.map((w) => w.pid);
    assert.equal(pids.length, 4);
    demo.kill('SIGINT'); // what Ctrl-C sends
    assert.deepEqual(await exited(demo), { code: 0, signal: null }, output);
    assert.match(output, /demo stopped after \d+ requests/);
    assert.ok(!existsSync(dirname(statusFile)), 'the demo removes its directory');
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is still running`);
  });
});

/** What the live view printed, after the demo's banner. */
function frames(output: string): string {
  return output.slice(output.indexOf('wsgi-status top'));
}
