/**
 * The benchmark's server (bench/server.ts) runs what each variant names: the
 * diagnostic variants that split wsgi-status's points above the floor
 * (`clock`, `no-tick`, `tick-100ms`) must measure their own code, not fall
 * back to a bare server, or the split they report means nothing. Real
 * processes, real requests, the real status file.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { forkServer } from '../bench/fork-server.ts';
import { get, readStatus, tempDir, until } from './support/helpers.ts';

interface Usage {
  inFlight: number;
  intervals: number[];
  clockSum: number;
}

function usage(child: ChildProcess): Promise<Usage> {
  return new Promise((resolve) => {
    const onMessage = (message: Usage & { type: string }) => {
      if (message.type !== 'usage') return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.send({ type: 'usage' });
  });
}

describe('bench server variants', () => {
  const { dir, cleanup } = tempDir('wsgi-status-bench-server-');
  const children: ChildProcess[] = [];
  after(async () => {
    for (const child of children) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    cleanup();
  });

  async function start(framework: string, variant: string): Promise<{ child: ChildProcess; port: number; file: string }> {
    const { child, port } = await forkServer(framework, variant, {
      execPath: process.execPath,
      execArgv: ['--import', 'tsx'],
      env: { BENCH_DIR: dir },
    });
    children.push(child);
    for (let i = 0; i < 10; i++) assert.equal((await get(port)).status, 200);
    return { child, port, file: join(dir, `bench-${framework}-${variant}-${child.pid}.json`) };
  }

  it('should give the floor no monitor, and clock the floor with its two clock reads', async () => {
    const floor = await usage((await start('http', 'floor')).child);
    assert.deepEqual(floor.intervals, []);
    assert.equal(floor.clockSum, 0);
    const clock = await usage((await start('http', 'clock')).child);
    assert.deepEqual(clock.intervals, []);
    // The sum of ten requests' end minus start: positive only when both reads ran for each.
    assert.ok(clock.clockSum > 0, `clock sum ${clock.clockSum}`);
    assert.equal(clock.inFlight, 0);
  });

  it('should run wsgi-status with its tick an hour away for no-tick, on http and in the Express chain', async () => {
    for (const framework of ['http', 'express']) {
      const { child } = await start(framework, 'no-tick');
      assert.deepEqual((await usage(child)).intervals, [3_600_000], framework);
    }
    assert.deepEqual((await usage((await start('http', 'wsgi-status')).child)).intervals, [1000]);
  });

  it('should tick every 100 ms for tick-100ms, counting the requests', async () => {
    const { child, file } = await start('http', 'tick-100ms');
    assert.deepEqual((await usage(child)).intervals, [100]);
    await until(() => existsSync(file) && readStatus(file).workers[0]?.requests === 10, 'a tick with the 10 requests', 3000);
  });
});
