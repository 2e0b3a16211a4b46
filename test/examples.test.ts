/**
 * Every runnable example in examples/ is started as a user would (node, the
 * package's own name resolving to the built dist/), sent a request, and
 * stopped; its status file must show the request, then no slot.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { get, readStatus, tempDir, waitForStatus } from './helpers.ts';

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
  for (const file of ['express.js', 'koa.js', 'fastify.js', 'http.js']) {
    describe(`when ${file} runs`, () => {
      it('should count a request in its status file and remove its slot on SIGTERM', async (t) => {
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
        assert.deepEqual(readStatus(statusFile).workers, [], 'the slot is removed on a graceful stop');
      });
    });
  }
});
