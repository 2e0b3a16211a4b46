/**
 * Issue 13, acceptance 1: the status path is hostile ground. A 4-worker
 * node:cluster app under steady, bounded load on 127.0.0.1; one after the
 * other, a FIFO, a symlink to /dev/zero, a symlink to another user's 0600
 * file, a directory, a unix socket, a 600 MB sparse file and 50 MB of junk
 * are put at the path. For each: every request answered, p99 latency within
 * the bound (below), no worker lost, a clear report from the workers'
 * onError, a valid document at the path again within two intervals (for the
 * directory, of its removal), and at the end the counters exact and the
 * link's target untouched (bytes, mode, owner).
 *
 * The p99 bound is max(2 × baseline p99, baseline p99 + 20 ms), the baseline
 * measured in the same run without a fault. The floor is there because a
 * loopback request takes a few milliseconds here and the machine's 2 cores
 * are shared: scheduler noise alone moves such a p99 by more than 2× from one
 * 1.5 s window to the next. The faults this guards against cost seconds
 * (issue 13: a FIFO, 0 req/s for as long as it stayed; 50 MB of junk, a 2.1 s
 * stall), so the floor still catches them a hundred times over.
 *
 * Faults are made beside the path and renamed into place (one atomic step,
 * as an attacker would), by child processes where making them takes time,
 * so the load generator in this process never stalls. This test never
 * opens what sits at the path without lstat first: a FIFO would hang it too.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  type Stats,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { UwsgiDocument } from '../src/model/document.ts';
import { ClusterGroup, type LoadResult, startLoad, totalRequests } from './support/cluster-harness.ts';
import { sleep, tempDir } from './support/helpers.ts';

const INTERVAL = 200;
const PHASE_MS = 1500;
const FAULT_AT_MS = 300;
const RATE = 200;
const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

/** Runs `task` holding the status file's lock (proper-lockfile's: the directory `<path>.lock`). */
async function underLock(path: string, task: () => void): Promise<void> {
  for (;;) {
    try {
      mkdirSync(`${path}.lock`);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      await sleep(1);
    }
  }
  try {
    task();
  } finally {
    rmdirSync(`${path}.lock`);
  }
}

function p99(latencies: number[]): number {
  const sorted = [...latencies].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)] ?? 0;
}

/** The document at `path` if a regular file with a valid document sits there now; never opens anything else. */
function validDocument(path: string): UwsgiDocument | null {
  let info: Stats | undefined;
  try {
    info = lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return null;
  }
  if (!info?.isFile() || info.size > 16 * 1024 * 1024) return null;
  try {
    const document = JSON.parse(readFileSync(path, 'utf8')) as UwsgiDocument;
    return Array.isArray(document.workers) ? document : null;
  } catch {
    return null;
  }
}

/** Milliseconds until a valid document is back at `path`, polling every 5 ms; Infinity after `limitMs`. */
async function untilValid(path: string, limitMs: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start <= limitMs) {
    if (validDocument(path) !== null) return performance.now() - start;
    await sleep(5);
  }
  return Number.POSITIVE_INFINITY;
}

interface Fault {
  name: string;
  /** Made at `staged` (beside the path), in the background, before the phase. */
  make: (staged: string) => Promise<void>;
  /** The report a worker gives for it. */
  report: RegExp;
  /** A directory cannot be replaced: it is removed this long after being placed. */
  removeAfterMs?: number;
}

describe('a 4-worker app while hostile things are put at the status path (issue 13, acceptance 1)', () => {
  const { dir, cleanup } = tempDir('wsgi-status-hostile-');
  const path = join(dir, 'status.json');
  const target = join(dir, 'someone-elses-secret');
  const targetText = 'root-owned secret, must never become a status document\n';
  const helpers: ChildProcess[] = [];
  let group: ClusterGroup;
  let port = 0;
  let baseline = 0;
  let answered = 0;

  const faults: Fault[] = [
    {
      name: 'a FIFO',
      make: async (staged) => void (await run('mkfifo', [staged])),
      report: /was not a regular file/,
    },
    {
      name: 'a symlink to /dev/zero',
      make: async (staged) => symlinkSync('/dev/zero', staged),
      report: /was a symbolic link/,
    },
    {
      name: `a symlink to a 0600 file owned by ${isRoot ? 'another user (65534)' : 'this user'}`,
      make: async (staged) => symlinkSync(target, staged),
      report: /was a symbolic link/,
    },
    {
      name: 'a directory',
      make: async (staged) => mkdirSync(staged),
      report: /cannot update .*status\.json/,
      removeAfterMs: 600,
    },
    {
      name: 'a unix socket',
      make: async (staged) => {
        // A live listener, as another program would leave it; killed in after().
        const listener = spawn(
          process.execPath,
          ['-e', `require('net').createServer().listen(${JSON.stringify(staged)}, () => console.log('up'))`],
          { stdio: ['ignore', 'pipe', 'ignore'] },
        );
        helpers.push(listener);
        await new Promise((resolve) => listener.stdout?.once('data', resolve));
      },
      report: /was not a regular file/,
    },
    {
      name: 'a 600 MB sparse file',
      make: async (staged) => {
        writeFileSync(staged, '');
        truncateSync(staged, 600 * 1024 * 1024);
      },
      report: /larger than 16 MiB/,
    },
    {
      name: '50 MB of junk',
      make: async (staged) => void (await run('sh', ['-c', `head -c 52428800 /dev/urandom > '${staged}'`])),
      report: /larger than 16 MiB/,
    },
  ];

  before(async () => {
    writeFileSync(target, targetText);
    chmodSync(target, 0o600);
    if (isRoot) chownSync(target, 65534, 65534);
    group = new ClusterGroup(4, { STATUS_FILE: path, INTERVAL: String(INTERVAL) });
    ({ port } = await group.listening(4));
    // Every worker has its slot before anything is measured.
    const deadline = Date.now() + 20_000;
    while ((validDocument(path)?.workers.length ?? 0) < 4 && Date.now() < deadline) await sleep(20);
    const warmup = await startLoad(port, { concurrency: 4, durationMs: 500, ratePerSecond: RATE }).done;
    answered += warmup.ok;
    const measured = await startLoad(port, { concurrency: 4, durationMs: PHASE_MS, ratePerSecond: RATE }).done;
    assert.equal(measured.errors, 0);
    answered += measured.ok;
    baseline = p99(measured.latencies);
  });

  after(async () => {
    for (const helper of helpers) helper.kill('SIGKILL');
    await group?.stop();
    cleanup();
  });

  for (const fault of faults) {
    it(`should keep serving, report and repair ${fault.name}`, async (t) => {
      const staged = `${path}.fault`;
      await fault.make(staged);
      const load = startLoad(port, { concurrency: 4, durationMs: PHASE_MS, ratePerSecond: RATE });
      await sleep(FAULT_AT_MS);
      if (fault.removeAfterMs === undefined) {
        // Under the writers' own lock, as a cooperating tool would: a write in progress would
        // otherwise rename its document over the fault before any worker has read it.
        await underLock(path, () => renameSync(staged, path));
      } else {
        // rename() cannot put a directory over a file: unlink the file first (a worker may write in between: again).
        for (;;) {
          rmSync(path, { force: true });
          try {
            renameSync(staged, path);
            break;
          } catch {
            await sleep(1);
          }
        }
      }
      if (fault.removeAfterMs !== undefined) {
        await sleep(fault.removeAfterMs);
        assert.ok(lstatSync(path).isDirectory(), 'a directory is left alone');
        rmdirSync(path);
      }
      const repairedIn = await untilValid(path, 5 * INTERVAL);
      const result: LoadResult = await load.done;
      answered += result.ok;

      t.diagnostic(
        `${result.ok} answered, p99 ${p99(result.latencies).toFixed(1)} ms (baseline ${baseline.toFixed(1)} ms), valid again after ${repairedIn.toFixed(0)} ms`,
      );
      assert.equal(result.errors, 0, 'every request answered');
      assert.ok(result.ok >= (RATE * PHASE_MS) / 1000 / 2, `steady load: ${result.ok} answered`);
      const bound = Math.max(2 * baseline, baseline + 20);
      const measured = p99(result.latencies);
      assert.ok(measured <= bound, `p99 ${measured.toFixed(1)} ms > ${bound.toFixed(1)} ms (baseline ${baseline.toFixed(1)} ms)`);
      assert.ok(repairedIn <= 2 * INTERVAL, `a valid document again after ${repairedIn.toFixed(0)} ms`);
      assert.deepEqual(group.ofType('exit'), [], 'no worker crashed');
      const reports = group.ofType('error').map((event) => String(event.message));
      // Once per kind per worker: a kind a worker reported in an earlier phase (the second
      // symlink, the socket after the FIFO) is not said again, so look over the whole run.
      assert.ok(
        reports.some((message) => fault.report.test(message)),
        `a report matching ${fault.report}; reports: ${reports.join(' | ')}`,
      );
    });
  }

  it('should end with exact counters, every worker listed, and the link target untouched', async () => {
    let document: UwsgiDocument | null = null;
    const deadline = Date.now() + 10 * INTERVAL;
    while (Date.now() < deadline) {
      document = validDocument(path);
      if (document !== null && document.workers.length === 4 && totalRequests(document) === answered) break;
      await sleep(20);
    }
    assert.ok(document, 'a valid document');
    assert.equal(document.workers.length, 4);
    assert.equal(totalRequests(document), answered, 'sum of requests == responses received');
    assert.ok(document.workers.every((worker) => worker.in_flight === 0));
    assert.equal(readFileSync(target, 'utf8'), targetText);
    const info = statSync(target);
    assert.equal(info.mode & 0o777, 0o600);
    if (isRoot) assert.deepEqual([info.uid, info.gid], [65534, 65534]);
  });
});
