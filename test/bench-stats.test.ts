/**
 * The benchmark's statistics (bench/stats.ts): the median, and the
 * distribution-free 95% interval for it that decides the CPU-time target.
 * The expected intervals are the order statistics of the binomial tables
 * for the median, worked out by hand: n = 6 → [x(1), x(6)] (96.9%),
 * n = 10 → [x(2), x(9)] (97.9%), n = 20 → [x(6), x(15)] (95.9%),
 * n = 30 → [x(10), x(21)] (95.7%).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, medianInterval } from '../bench/stats.ts';

/** 1..n, shuffled, so the interval's bounds name their order statistics. */
function ranks(n: number): number[] {
  const values = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = n - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [values[i], values[j]] = [values[j], values[i]];
  }
  return values;
}

describe('bench statistics', () => {
  it('should take the middle value, or the mean of the two middle ones', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  it('should give no 95% interval below 6 values (even the whole range covers less)', () => {
    assert.equal(medianInterval(ranks(5)), null);
    assert.equal(medianInterval([]), null);
  });

  for (const [n, low, high] of [
    [6, 1, 6],
    [10, 2, 9],
    [20, 6, 15],
    [30, 10, 21],
  ]) {
    it(`should give [x(${low}), x(${high})] for ${n} values, as the tables do`, () => {
      assert.deepEqual(medianInterval(ranks(n)), { low, high });
    });
  }

  it('should cover the true median in about 95% of samples, and not much more', () => {
    // xorshift32 from a fixed seed: the same samples on every run.
    let state = 2463534242;
    const uniform = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 2 ** 32;
    };
    let covered = 0;
    const trials = 4000;
    for (let trial = 0; trial < trials; trial++) {
      const interval = medianInterval(Array.from({ length: 20 }, uniform));
      if (interval !== null && interval.low <= 0.5 && 0.5 <= interval.high) covered++;
    }
    // Exact coverage for n = 20 is 95.86%; 4,000 trials put it within ±0.7% (two standard errors).
    assert.ok(covered / trials > 0.945 && covered / trials < 0.972, `covered ${covered} of ${trials}`);
  });
});
