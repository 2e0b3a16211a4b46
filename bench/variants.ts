/** How the benchmarks' tables name a variant of bench/server.ts, and the settings a run was given. */
const LABELS: Record<string, string> = {
  'wsgi-status': '**wsgi-status**',
  // wsgi-status on the framework's http.Server (src/adapters/http.ts) instead of in its chain.
  instrument: 'wsgi-status via `instrument(server)`',
  // Zero code: `--import wsgi-status/register` (src/adapters/register.ts), a diagnostics_channel subscriber.
  register: 'wsgi-status via `--import wsgi-status/register`',
  // Diagnostics (bench/run.ts): the floor plus two clock reads; wsgi-status without its tick, and ticking ten times a second.
  clock: 'floor + two clock reads (diagnostic)',
  'no-tick': 'wsgi-status, no tick (diagnostic)',
  'tick-100ms': 'wsgi-status, a tick every 100 ms (diagnostic)',
};

export function variantLabel(variant: string): string {
  return LABELS[variant] ?? variant;
}

/** The BENCH_* settings a run was given, as a shell prefix of its command line (empty when none). */
export function benchSettings(): string {
  return Object.entries(process.env)
    .filter(([key]) => key.startsWith('BENCH_') && key !== 'BENCH_PINNED' && key !== 'BENCH_OUT' && key !== 'BENCH_DIR')
    .map(([key, value]) => `${key}=${value} `)
    .join('');
}
