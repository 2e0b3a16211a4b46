/** The benchmarks' statistics: medians, and how far a median can be trusted. */

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * The distribution-free interval for the median of `values` at `confidence`:
 * [x(k), x(n+1-k)] of the sorted values, with the largest k whose coverage
 * 1 − 2·P(Binomial(n, ½) < k) is still at least `confidence`. Null below 6
 * values, where even the full range covers less than 95%.
 */
export function medianInterval(values: number[], confidence = 0.95): { low: number; high: number } | null {
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  // X ~ Binomial(n, ½): how many values fall below the true median.
  let k = 0;
  let term = 0.5 ** n; // P(X = k)
  let atMost = 0; // P(X ≤ k), once added: the interval [x(k+1), x(n−k)] misses with 2·P(X ≤ k)
  while (k < n >> 1) {
    atMost += term;
    if (1 - 2 * atMost < confidence) break;
    k++;
    term = (term * (n - k + 1)) / k;
  }
  return k === 0 ? null : { low: sorted[k - 1], high: sorted[n - k] };
}
