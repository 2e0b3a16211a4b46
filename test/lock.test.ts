/**
 * The tick's lock (src/store/lock.ts, withBriefLock): one mkdir and one
 * rmdir while the lock is free, proper-lockfile's waits and stale takeover
 * while it is not, and never the removal of a lock someone took over. Real
 * directories, a real second process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LOCK_BUSY, LOCK_LOST, type LockOptions, withBriefLock, withLock } from '../src/store/lock.ts';
import { blockUntil, sleep, tempDir } from './support/helpers.ts';

const TAKER = new URL('support/processes/lock-taker.ts', import.meta.url).pathname;

function options(file: string, extra: Partial<LockOptions> = {}): LockOptions {
  return { lockPath: `${file}.lock`, staleMs: 2000, waitMs: 1000, onCompromised: () => assert.fail('compromised'), ...extra };
}

describe('withBriefLock(file, options, task)', () => {
  it('should hold the lock directory through the task and remove it after, when the task returns or throws', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'status.json');
      const seen = await withBriefLock(file, options(file), (held) => {
        held.assertHeld();
        return existsSync(`${file}.lock`);
      });
      assert.equal(seen, true, 'held during the task');
      assert.equal(existsSync(`${file}.lock`), false, 'given back');
      await assert.rejects(
        withBriefLock(file, options(file), () => {
          throw new Error('task failed');
        }),
        /task failed/,
      );
      assert.equal(existsSync(`${file}.lock`), false, 'given back after a throw');
    } finally {
      cleanup();
    }
  });

  it('should fail with ENOENT when the directory is missing (the store makes it and tries again)', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'missing', 'status.json');
      await assert.rejects(
        withBriefLock(file, options(file), () => 1),
        { code: 'ENOENT' },
      );
    } finally {
      cleanup();
    }
  });

  it("should wait for proper-lockfile's holder and run once it has released", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'status.json');
      const order: string[] = [];
      let holding!: () => void;
      const held = new Promise<void>((resolve) => {
        holding = resolve;
      });
      const holder = withLock(file, options(file), async () => {
        holding();
        await sleep(300);
        order.push('holder done');
      });
      await held;
      await withBriefLock(file, options(file), () => {
        order.push('brief');
      });
      await holder;
      assert.deepEqual(order, ['holder done', 'brief']);
    } finally {
      cleanup();
    }
  });

  it('should give up with ELOCKED when a fresh lock stays busy, and take a stale leftover over', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'status.json');
      mkdirSync(`${file}.lock`);
      await assert.rejects(
        withBriefLock(file, options(file, { waitMs: 200 }), () => 1),
        { code: LOCK_BUSY },
      );
      assert.equal(existsSync(`${file}.lock`), true, 'the busy lock is left alone');
      const hourAgo = (Date.now() - 3_600_000) / 1000;
      utimesSync(`${file}.lock`, hourAgo, hourAgo);
      assert.equal(await withBriefLock(file, options(file), () => 'taken over'), 'taken over');
      assert.equal(existsSync(`${file}.lock`), false);
    } finally {
      cleanup();
    }
  });

  it('should skip the write and leave the lock alone when blocked past the stale time while another process took it over', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'status.json');
      const compromised: Error[] = [];
      let taker: ReturnType<typeof spawn> | undefined;
      let said = '';
      const outcome = withBriefLock(file, options(file, { onCompromised: (error) => compromised.push(error) }), (held) => {
        // Fault injection: the task blocks the event loop (a long synchronous
        // handler would) until another process has taken the stale lock over.
        taker = spawn(process.execPath, ['--import', 'tsx', TAKER, file, '3000', '2000'], {
          stdio: ['ignore', 'pipe', 'ignore'],
        });
        taker.stdout?.on('data', (chunk: Buffer) => {
          said += chunk.toString();
        });
        blockUntil(() => existsSync(`${file}.taken`));
        held.assertHeld();
      });
      await assert.rejects(outcome, { code: LOCK_LOST });
      assert.equal(existsSync(`${file}.lock`), true, "the taker's lock directory is still there");
      assert.equal(compromised.length, 1, 'reported once');
      assert.match(compromised[0].message, /taken over while held/);
      await new Promise((resolve) => (taker?.exitCode === null ? taker.once('exit', resolve) : resolve(null)));
      assert.equal(said.trim(), 'released', 'the taker kept and released its lock');
      assert.equal(existsSync(`${file}.lock`), false);
    } finally {
      cleanup();
    }
  });
});
