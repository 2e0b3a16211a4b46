/**
 * The event-loop delay sampler: real timers on this test's own loop, idle and
 * blocked by a busy wait.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoopDelaySampler } from '../src/monitor/loop-delay.ts';
import { blockFor } from './support/helpers.ts';

describe('LoopDelaySampler', () => {
  it('should read an idle loop as (nearly) no delay, and a blocked one as the time beyond its period', async () => {
    const sampler = new LoopDelaySampler(20);
    sampler.start();
    try {
      assert.equal(sampler.meanMs, 0, 'no sample yet');
      await sleep(250);
      assert.ok(sampler.meanMs < 15, `idle: ${sampler.meanMs} ms`);
      assert.ok(sampler.longestMs < 40, `idle, longest: ${sampler.longestMs} ms`);
      sampler.reset();
      await sleep(30);
      blockFor(200);
      await sleep(30);
      // One gap of about 200 ms among a few of 20: the longest sees it whole, the mean in part.
      assert.ok(sampler.longestMs >= 170, `blocked, longest: ${sampler.longestMs} ms`);
      assert.ok(sampler.meanMs >= 30, `blocked, mean: ${sampler.meanMs} ms`);
    } finally {
      sampler.stop();
    }
  });

  it('should start each interval afresh on reset, and take no sample once stopped', async () => {
    const sampler = new LoopDelaySampler(20);
    sampler.start();
    await sleep(10);
    blockFor(100);
    await sleep(30);
    assert.ok(sampler.longestMs >= 70, `before reset: ${sampler.longestMs} ms`);
    sampler.reset();
    assert.equal(sampler.meanMs, 0);
    assert.equal(sampler.longestMs, 0);
    sampler.stop();
    blockFor(100);
    await sleep(60);
    assert.equal(sampler.longestMs, 0, 'a stopped sampler took a sample');
  });

  it('should never keep the process alive', () => {
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { LoopDelaySampler } from ${JSON.stringify(new URL('../src/monitor/loop-delay.ts', import.meta.url).href)};
         new LoopDelaySampler(20).start();`,
      ],
      { timeout: 20_000, encoding: 'utf8' },
    );
    assert.equal(child.error, undefined, 'the process did not exit on its own');
    assert.equal(child.status, 0, child.stderr);
  });
});
