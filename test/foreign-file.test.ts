/**
 * Issue 13, acceptance 6: the `serve` sidecar, `show` and `mackerel` given a
 * file this library did not write (a real uWSGI 2.0.21 capture, another
 * tool's file, garbage, a FIFO) always answer with a valid uWSGI document:
 * the file's uWSGI-shaped workers whose process lives, else none, and what
 * was wrong is said once. Never an empty connection.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { UwsgiDocument } from '../src/model/document.ts';
import { Children } from './support/children.ts';
import { sleep, tempDir } from './support/helpers.ts';
import { CLI, LineReader, readRaw, runCli, runInProcess, strictDecode } from './support/stats-helpers.ts';

const FIXTURES = new URL('fixtures/', import.meta.url);
const CAPTURES = readdirSync(FIXTURES).filter((name) => /^uwsgi-2\.0\.21-stats.*\.json$/.test(name));

/** The capture's text with each non-zero worker pid replaced by a live one, formatting untouched. */
function withLivePids(text: string, live: number[]): { text: string; pids: number[] } {
  const workers = (JSON.parse(text) as UwsgiDocument).workers.map((w) => w.pid).filter((pid) => pid > 0);
  const mapping = new Map(workers.map((pid, i) => [pid, live[i]]));
  // Only the workers' pids: the top-level pid (uWSGI's master) follows "cwd"/"load", not "id".
  const rewritten = text.replace(/("id":\s*\d+,\s*"pid":\s*)(\d+)/g, (whole, head: string, pid: string) =>
    mapping.has(Number(pid)) ? `${head}${mapping.get(Number(pid))}` : whole,
  );
  return { text: rewritten, pids: workers.map((pid) => mapping.get(pid) as number) };
}

function mackerelValue(stdout: string, name: string): number {
  const line = stdout.split('\n').find((l) => l.startsWith(`uWSGI.uWSGI.${name}\t`));
  assert.ok(line, `no ${name} in ${stdout}`);
  return Number(line.split('\t')[1]);
}

describe('a status file this library did not write (issue 13)', () => {
  const children = new Children();
  const { dir, cleanup } = tempDir('wsgi-status-foreign-');
  const file = join(dir, 'status.json');
  const sock = join(dir, 'stats.sock');
  const sleepers: ChildProcess[] = [];
  let stderr = '';

  /** Puts `text` at the path the way a writer does: whole, by rename. */
  const place = (text: string) => {
    writeFileSync(`${file}.new`, text);
    renameSync(`${file}.new`, file);
  };

  before(async () => {
    // Live processes to stand in for the capture's workers (a sidecar rightly leaves dead pids out).
    for (let i = 0; i < 4; i++) sleepers.push(spawn('sleep', ['300'], { stdio: 'ignore' }));
    const sidecar = children.spawnNode([CLI, 'serve', file, '--stats', sock]);
    sidecar.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    await new LineReader(sidecar).waitFor((line) => line.includes('listening on'), 20_000, 'the sidecar listening');
  });
  after(async () => {
    for (const sleeper of sleepers) sleeper.kill('SIGKILL');
    await children.killAll();
    cleanup();
  });

  describe('when it is a real uWSGI capture (workers pointed at live processes)', () => {
    for (const name of CAPTURES) {
      it(`should serve ${name} with its live workers, read by show and mackerel`, async () => {
        const capture = JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as UwsgiDocument;
        const { text, pids } = withLivePids(
          readFileSync(new URL(name, FIXTURES), 'utf8'),
          sleepers.map((s) => s.pid as number),
        );
        place(text);
        const served = strictDecode((await readRaw({ path: sock })).data.toString('utf8'), {
          ours: true,
        }) as unknown as UwsgiDocument;
        const live = capture.workers.filter((w) => w.pid > 0);
        assert.deepEqual(
          served.workers.map((w) => [w.id, w.pid, w.requests, w.status]),
          live.map((w, i) => [w.id, pids[i], w.requests, w.status]),
        );
        assert.equal(served.version, capture.version);

        // As the CLI reads it: from the sidecar's socket and from the file itself.
        const runs = await Promise.all([
          runInProcess(['show', `unix://${sock}`]),
          runInProcess(['show', file]),
          runInProcess(['mackerel', `unix://${sock}`, '--tempfile', join(dir, `${name}.state`)]),
        ]);
        for (const run of runs) assert.equal(run.code, 0, run.stderr);
        for (const run of runs.slice(0, 2)) {
          assert.equal(run.stderr, '');
          const shown = strictDecode(run.stdout) as unknown as UwsgiDocument;
          assert.deepEqual(
            shown.workers.map((w) => w.pid),
            pids,
          );
        }
        assert.equal(mackerelValue(runs[2].stdout, 'workers.busy'), live.filter((w) => w.status === 'busy').length);
        assert.equal(mackerelValue(runs[2].stdout, 'workers.idle'), live.filter((w) => w.status === 'idle').length);
      });
    }

    it('should answer the spawned CLI commands too (mackerel, show)', async () => {
      const { text, pids } = withLivePids(
        readFileSync(new URL('uwsgi-2.0.21-stats-busy-raw.json', FIXTURES), 'utf8'),
        sleepers.map((s) => s.pid as number),
      );
      place(text);
      const [show, mackerel] = await Promise.all([
        runCli(children, ['show', `unix://${sock}`]),
        runCli(children, ['mackerel', `unix://${sock}`, '--tempfile', join(dir, 'spawned.state')]),
      ]);
      assert.equal(show.code, 0, show.stderr);
      assert.deepEqual(
        (JSON.parse(show.stdout) as UwsgiDocument).workers.map((w) => w.pid),
        pids,
      );
      assert.equal(mackerel.code, 0, mackerel.stderr);
      assert.equal(mackerelValue(mackerel.stdout, 'workers.busy'), 2);
    });
  });

  describe('when it holds nothing usable', () => {
    for (const [what, make, said] of [
      ['another tool’s JSON', () => place('{"hello": "world", "workers": [{"id": 1.5}]}'), /not uWSGI workers/],
      ['invalid JSON', () => place('{"workers": ['), /holds invalid JSON/],
      ['a FIFO', () => execFileSync('mkfifo', [file]), /is not a regular file/],
    ] as const) {
      it(`should serve a valid document with no workers for ${what}, and say so once`, async () => {
        rmSync(file, { force: true });
        make();
        const before = stderr;
        for (let i = 0; i < 3; i++) {
          const served = strictDecode(
            (await readRaw({ path: sock }, { timeoutMs: 2000 })).data.toString('utf8'),
          ) as unknown as UwsgiDocument;
          assert.deepEqual(served.workers, []);
        }
        await sleep(50);
        const said_ = stderr.slice(before.length).split('\n').filter(Boolean);
        assert.equal(said_.length, 1, stderr);
        assert.match(said_[0], said);
        rmSync(file, { force: true });
      });
    }

    it('should let show print the document with a warning for entries that are not uWSGI workers', async () => {
      place('{"workers": [{"id": 1.5}]}');
      const run = await runInProcess(['show', file]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual((strictDecode(run.stdout) as unknown as UwsgiDocument).workers, []);
      assert.match(
        run.stderr,
        /^wsgi-status: show: .*status\.json holds entries that are not uWSGI workers; they were left out\n$/,
      );
    });
  });
});
