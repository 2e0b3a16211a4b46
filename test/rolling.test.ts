/**
 * A node:cluster app's own rolling restart under load (issue 12, acceptance
 * 3): the primary (test/support/processes/pm2/rolling.mjs) forks each replacement with
 * the old worker's `workerId`, waits until it listens, then shuts the old one
 * down and disconnects it. The status file is read every 100 ms throughout
 * and invariants 1–6 are checked (test/invariants.ts).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { UwsgiDocument } from '../src/model/document.ts';
import { isProcessAlive } from '../src/system/liveness.ts';
import { startLoad } from './support/cluster-harness.ts';
import { freePort, sleep, tempDir } from './support/helpers.ts';
import { InvariantPoller, liveRows, sumRequests } from './support/invariants.ts';

const PRIMARY = fileURLToPath(new URL('./support/processes/pm2/rolling.mjs', import.meta.url));
const INTERVAL = 200;

interface PrimaryEvent {
  type: string;
  pid: number;
  slot?: number;
}

/** The primary and the events it prints. */
function startPrimary(env: Record<string, string>): {
  child: ChildProcess;
  events: PrimaryEvent[];
  next: (type: string, count?: number) => Promise<PrimaryEvent[]>;
} {
  const child = spawn(process.execPath, [PRIMARY], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const events: PrimaryEvent[] = [];
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') events.push(JSON.parse(line) as PrimaryEvent);
  });
  const next = async (type: string, count = 1) => {
    const from = events.length;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const found = events.slice(from).filter((event) => event.type === type);
      if (found.length >= count) return found;
      assert.ok(Date.now() < deadline, `${count} ${type} event(s) from the primary`);
      await sleep(10);
    }
  };
  return { child, events, next };
}

function readDocument(file: string): UwsgiDocument | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as UwsgiDocument;
  } catch {
    return null;
  }
}

async function waitFor(file: string, predicate: (document: UwsgiDocument) => boolean, what: string): Promise<UwsgiDocument> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const document = readDocument(file);
    if (document && predicate(document)) return document;
    assert.ok(Date.now() < deadline, `${what}; last: ${JSON.stringify(document?.workers.map((w) => [w.id, w.pid, w.status]))}`);
    await sleep(20);
  }
}

describe('a node:cluster rolling restart (fork the replacement, then disconnect the old worker)', () => {
  describe('when 4 workers are restarted one by one under load', () => {
    it('should keep invariants 1–6 on every read, ids 1–4, and count every response exactly once', {
      timeout: 120_000,
    }, async (t) => {
      if (!existsSync(fileURLToPath(new URL('../dist/adapters/http.js', import.meta.url)))) {
        assert.fail('this test runs the built package: run `npm run build` first');
      }
      const temp = tempDir('wsgi-status-rolling-');
      const file = join(temp.dir, 'status.json');
      const port = await freePort();
      const primary = startPrimary({ STATUS_FILE: file, INTERVAL: String(INTERVAL), PORT: String(port), WORKERS: '4' });
      t.after(async () => {
        primary.child.stdin?.end();
        primary.child.kill('SIGKILL');
        const pids = primary.events.map((event) => event.pid);
        for (const pid of pids) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 500 && pids.some((pid) => isProcessAlive(pid)); i++) await sleep(10);
        temp.cleanup();
      });
      const first = await primary.next('listening', 4);
      const rows = (events: PrimaryEvent[]) =>
        JSON.stringify(events.map((e) => [e.slot, e.pid]).sort((a, b) => Number(a[0]) - Number(b[0])));
      await waitFor(file, (d) => JSON.stringify(liveRows(d)) === rows(first), 'the 4 workers in slots 1–4');

      const poller = new InvariantPoller(file, 100);
      t.after(() => poller.stop());
      const load = startLoad(port, { concurrency: 8, ratePerSecond: 400, durationMs: 60_000 });
      t.after(() => load.stop());
      await sleep(500);
      const replacements = primary.next('listening', 4);
      primary.child.stdin?.write('restart\n');
      await primary.next('restarted');
      const second = await replacements;
      await sleep(300);
      const result = await load.stop();
      t.diagnostic(`${result.ok} responses, ${result.errors} connection errors during the restart`);
      assert.ok(result.ok > 300, `the load ran (${result.ok} responses)`);

      const settled = await waitFor(
        file,
        (d) => JSON.stringify(liveRows(d)) === rows(second) && sumRequests(d) >= result.ok,
        'the replacements in slots 1–4, every response counted',
      );
      assert.equal(sumRequests(settled), result.ok, 'nothing counted twice');
      await sleep(2 * INTERVAL);
      const after = readDocument(file) as UwsgiDocument;
      assert.equal(sumRequests(after), result.ok);
      assert.deepEqual(
        after.workers.map((w) => [w.id, w.respawn_count, w.status === 'cheap']),
        [
          [1, 2, false],
          [2, 2, false],
          [3, 2, false],
          [4, 2, false],
        ],
      );
      const report = poller.stop();
      t.diagnostic(`${report.reads} reads of the status file, ${report.violations.length} violations`);
      assert.deepEqual(report.violations, []);
    });
  });
});
