/**
 * `npm run bench`: what wsgi-status costs, against bare servers, the floor
 * (an in-flight counter and one end listener) and the peers, all in one run;
 * on the frameworks also through `instrument(server)`, outside their chains.
 *
 * Each variant is its own server process, all pinned to core 0 (where
 * `taskset` exists); the load generators run on core 1. The variants of a
 * framework run side by side: each round loads every one of them at the same
 * time, one load generator each, so whatever the shared machine does during
 * a round (steal, frequency, a neighbour) hits them alike, and each server's
 * CPU time per request is read from its own counters. Every ratio is taken
 * against the bare server and the floor of the same round; medians are
 * reported with min–max. The target: wsgi-status's ratio to bare at most one
 * point above the floor's.
 *
 * The verdict on that target is a confidence interval, not a median alone:
 * rounds of one set share their processes (and a process's lifelong offset),
 * so each set gives one figure, the median of its rounds' points above the
 * floor, and the sets' figures give the median and its distribution-free 95%
 * interval (order statistics of the binomial; 6 sets at least). The target is
 * met when the whole interval is at or below one point, missed when the whole
 * interval is above, and undecided otherwise (more sets narrow it).
 *
 * The status files live in /dev/shm where it exists, as README tells users
 * to deploy them: a tick there costs less CPU than on a disk.
 *
 * Why not one variant after the other: a Node server left idle for a few
 * seconds after load (V8 shrinks its heap) then runs 25–30% slower or faster
 * than one kept busy, and an A/A pair loaded in turns differed by up to ±35%
 * per round here; side by side, after a shared warm-up, the same pair agrees
 * within ±5–15% per round, by the day. What remains is per process (one can run a few
 * percent off its twin for its whole life), so each framework is measured
 * over several sets of fresh processes.
 *
 * Environment: BENCH_SETS of fresh processes (default 10, enough for a 95%
 * interval that leaves out the highest and the lowest set), BENCH_ROUNDS per
 * set (default 3), BENCH_SECONDS per round (default 3), BENCH_CONNECTIONS
 * per server (default 32), BENCH_FRAMEWORKS (comma list),
 * BENCH_VARIANTS (comma list: only these of each framework's variants, bare
 * always included; fewer side by side give each more of the core; it may
 * also name the diagnostic variants `clock`, `no-tick` and `tick-100ms`, below),
 * BENCH_WARM_UP_REQUESTS (default 8,000 per server), BENCH_MEMORY_REQUESTS
 * (default 1,000,000; 0 skips), BENCH_TICKS (0 skips the ticks), BENCH_OUT (markdown file,
 * default bench/RESULTS.md).
 */
import { type ChildProcess, execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { canPin, forkServer } from './fork-server.ts';
import { profileShare } from './profile.ts';
import { median, medianInterval } from './stats.ts';
import { measureTicks } from './ticks.ts';
import { benchSettings, variantLabel } from './variants.ts';

const SETS = Number(process.env.BENCH_SETS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
// The warm-up goes on in rounds of WARM_UP_SECONDS until every server has
// answered WARM_UP_REQUESTS: V8 tiers up by work done, not by time, and a
// framework's variants side by side share one core. Express (six variants, 3 s
// rounds) cost 767, 506 and 337 µs a request in its first three rounds and
// about 300 from the fourth, some 5,000 requests in; 4 s of warm-up left its
// measured rounds at up to twice the steady cost.
const WARM_UP_SECONDS = 3;
const WARM_UP_REQUESTS = Number(process.env.BENCH_WARM_UP_REQUESTS ?? 8_000);
const WARM_UP_LIMIT_SECONDS = 90;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MEMORY_REQUESTS = Number(process.env.BENCH_MEMORY_REQUESTS ?? 1_000_000);
const OUT = process.env.BENCH_OUT ?? join(import.meta.dirname, 'RESULTS.md');
const FRAMEWORKS: Record<string, string[]> = {
  http: ['bare', 'wsgi-status', 'register', 'floor', 'prom-client'],
  // `instrument`: wsgi-status on the framework's http.Server (src/adapters/http.ts) instead of in its chain.
  express: ['bare', 'wsgi-status', 'instrument', 'floor', 'express-prom-bundle', 'express-status-monitor'],
  koa: ['bare', 'wsgi-status', 'instrument', 'floor', 'prom-client'],
  fastify: ['bare', 'wsgi-status', 'instrument', 'floor', '@fastify/under-pressure'],
};
const selected = (process.env.BENCH_FRAMEWORKS ?? Object.keys(FRAMEWORKS).join(',')).split(',');
// The target (issue 18): what wsgi-status adds to the floor's ratio to bare, at most one point.
const TARGET_POINTS = 0.01;
// The variants of ours that the target applies to.
const OURS = ['wsgi-status', 'instrument', 'register'];
// Diagnostic variants, run only where BENCH_VARIANTS names them (bench/server.ts):
// `clock`, the floor plus the two clock reads uWSGI's response-time fields
// need; `no-tick`, wsgi-status with its tick an hour away; `tick-100ms`,
// wsgi-status ticking ten times a second. Beside the floor and wsgi-status
// they split its points above the floor into the fields' price, the rest of
// the request path and the tick (ten ticks a second weigh ten times one, well
// clear of the spread between processes).
const DIAGNOSTIC = ['clock', 'no-tick', 'tick-100ms'];

const hasTaskset = canPin();
// Made by the pinned run only (main() re-runs this file under taskset first).
let benchDir = '';

interface Usage {
  cpuMicros: number;
  rss: number;
  heapUsed: number;
}

interface Running {
  child: ChildProcess;
  port: number;
  usage(gc?: boolean): Promise<Usage>;
  stop(): void;
}

/** How to start a server process: pinned to core 0 where taskset exists. */
function serverExec(nodeArgs: string[]): { execPath: string; execArgv: string[] } {
  return hasTaskset
    ? { execPath: 'taskset', execArgv: ['-c', '0', process.execPath, '--import', 'tsx', ...nodeArgs] }
    : { execPath: process.execPath, execArgv: ['--import', 'tsx', ...nodeArgs] };
}

/** Starts one server process (on core 0 where possible) and waits for its port. */
async function startServer(framework: string, variant: string, nodeArgs: string[] = []): Promise<Running> {
  const { child, port } = await forkServer(framework, variant, { ...serverExec(nodeArgs), env: { BENCH_DIR: benchDir } });
  return {
    child,
    port,
    usage: (gc = false) =>
      new Promise((resolve) => {
        const onMessage = (message: Usage & { type: string }) => {
          if (message.type !== 'usage') return;
          child.off('message', onMessage);
          resolve(message);
        };
        child.on('message', onMessage);
        child.send({ type: gc ? 'gc' : 'usage' });
      }),
    stop: () => child.kill('SIGKILL'),
  };
}

interface LoadResult {
  requests: number;
  errors: number;
  p99: number;
}

const hasWrk = process.env.BENCH_LOAD !== 'autocannon' && spawnSync('wrk', ['--version']).error === undefined;

/** Closed-loop load: wrk where installed (C, lighter on the load core), else autocannon. */
function load(port: number, options: { seconds?: number; amount?: number }): Promise<LoadResult> {
  if (hasWrk && options.seconds !== undefined) return loadWithWrk(port, options.seconds);
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}/`,
        connections: CONNECTIONS,
        pipelining: 1,
        ...(options.amount === undefined ? { duration: options.seconds } : { amount: options.amount }),
      },
      (error, result) => {
        if (error) reject(error);
        else resolve({ requests: result.requests.total, errors: result.errors + result.non2xx, p99: result.latency.p99 });
      },
    );
  });
}

function loadWithWrk(port: number, seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'wrk',
      ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '30s', '--latency', `http://127.0.0.1:${port}/`],
      { encoding: 'utf8' },
      (error, stdout) => {
        if (error) return reject(error);
        const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? Number.NaN);
        const p99 = /99%\s+([\d.]+)(us|ms|s)\b/.exec(stdout);
        const unit = { us: 0.001, ms: 1, s: 1000 }[(p99?.[2] ?? 'ms') as 'us' | 'ms' | 's'];
        const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
        const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
        const failed =
          errors +
          (socketErrors
            ? socketErrors
                .slice(1)
                .map(Number)
                .reduce((a, b) => a + b, 0)
            : 0);
        if (!Number.isFinite(requests)) return reject(new Error(`cannot read wrk output: ${stdout}`));
        resolve({ requests, errors: failed, p99: Number(p99?.[1] ?? 0) * unit });
      },
    );
  });
}

/**
 * Loads every server at once, in rounds, until each has answered
 * WARM_UP_REQUESTS (V8 has then optimised the request path: the first
 * seconds of a fresh process cost up to twice the steady state), or for
 * WARM_UP_LIMIT_SECONDS at most. All at once, so that none sits idle between
 * its warm-up and the first round.
 */
async function warmUp(servers: Running[]): Promise<void> {
  const answered = servers.map(() => 0);
  const started = performance.now();
  while (answered.some((count) => count < WARM_UP_REQUESTS) && performance.now() - started < WARM_UP_LIMIT_SECONDS * 1000) {
    const results = await Promise.all(servers.map((server) => load(server.port, { seconds: WARM_UP_SECONDS })));
    for (const [i, result] of results.entries()) answered[i] += result.requests;
  }
}

interface Sample {
  cpuPerRequest: number;
  rps: number;
  p99: number;
}

/** Loads every server at once for SECONDS, load generators started in `order`; one sample per server. */
async function measureTogether(servers: Running[], order: number[]): Promise<Sample[]> {
  const before = await Promise.all(servers.map((server) => server.usage()));
  const started = performance.now();
  const loads: Promise<LoadResult>[] = [];
  for (const index of order) loads[index] = load(servers[index].port, { seconds: SECONDS });
  const results = await Promise.all(loads);
  const elapsed = (performance.now() - started) / 1000;
  const after = await Promise.all(servers.map((server) => server.usage()));
  return results.map((result, index) => {
    if (result.errors > 0) throw new Error(`${result.errors} failed requests`);
    return {
      cpuPerRequest: (after[index].cpuMicros - before[index].cpuMicros) / result.requests,
      rps: result.requests / elapsed,
      p99: result.p99,
    };
  });
}

const fmt = (value: number, digits = 3) => value.toFixed(digits);

/** Points above the floor for one of our variants: the sets' medians, their median and 95% interval. */
interface PointsAboveFloor {
  perSet: number[];
  median: number;
  interval: { low: number; high: number } | null;
}

interface Row {
  framework: string;
  variant: string;
  cpu: number;
  rps: number;
  p99: number;
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  /** Against the floor of the same round (median, min, max), when the floor ran. */
  floor?: { ratio: number; min: number; max: number };
  /** For our variants, when the floor ran: its ratio to bare minus the floor's, per set. */
  points?: PointsAboveFloor;
}

const onlyVariants = process.env.BENCH_VARIANTS?.split(',');

async function benchFramework(framework: string): Promise<Row[]> {
  const variants = [...FRAMEWORKS[framework], ...DIAGNOSTIC.filter((variant) => onlyVariants?.includes(variant))].filter(
    (variant) => variant === 'bare' || onlyVariants === undefined || onlyVariants.includes(variant),
  );
  const samples = new Map<string, Sample[]>(variants.map((variant) => [variant, []]));
  for (let set = 0; set < SETS; set++) {
    // Fresh processes for every set, started in a rotated order: one process
    // can run a few percent faster or slower than its twin for its whole life
    // (what V8 happened to optimise, where its memory landed), so a variant is
    // judged over several processes, not one.
    const servers: Running[] = [];
    try {
      for (let i = 0; i < variants.length; i++) {
        const index = (i + set) % variants.length;
        servers[index] = await startServer(framework, variants[index]);
      }
      await warmUp(servers);
      for (let round = 0; round < ROUNDS; round++) {
        // Rotate which load generator starts first, so none always has a head start.
        const order = variants.map((_, i) => (i + round) % variants.length);
        const measured = await measureTogether(servers, order);
        for (const [i, variant] of variants.entries()) samples.get(variant)!.push(measured[i]);
        process.stderr.write(`  ${framework} set ${set + 1}/${SETS} round ${round + 1}/${ROUNDS}\n`);
      }
    } finally {
      for (const server of servers) server?.stop();
    }
  }
  const bare = samples.get('bare')!;
  const floor = samples.get('floor');
  return variants.map((variant) => {
    const mine = samples.get(variant)!;
    const ratios = mine.map((sample, i) => sample.cpuPerRequest / bare[i].cpuPerRequest);
    const toFloor = floor && mine.map((sample, i) => sample.cpuPerRequest / floor[i].cpuPerRequest);
    let points: PointsAboveFloor | undefined;
    if (floor && (OURS.includes(variant) || DIAGNOSTIC.includes(variant))) {
      const perRound = mine.map((sample, i) => (sample.cpuPerRequest - floor[i].cpuPerRequest) / bare[i].cpuPerRequest);
      const perSet = Array.from({ length: SETS }, (_, set) => median(perRound.slice(set * ROUNDS, (set + 1) * ROUNDS)));
      points = { perSet, median: median(perSet), interval: medianInterval(perSet) };
    }
    return {
      framework,
      variant,
      cpu: median(mine.map((s) => s.cpuPerRequest)),
      rps: median(mine.map((s) => s.rps)),
      p99: median(mine.map((s) => s.p99)),
      ratio: median(ratios),
      ratioMin: Math.min(...ratios),
      ratioMax: Math.max(...ratios),
      floor: toFloor && { ratio: median(toFloor), min: Math.min(...toFloor), max: Math.max(...toFloor) },
      points,
    };
  });
}

const signedPoints = (value: number) => `${value >= 0 ? '+' : ''}${fmt(value * 100, 1)}`;

/**
 * The target's verdict for one of our rows: its points above the floor (ratio
 * to bare minus the floor's, same round), the median over sets and its 95%
 * interval; met when the interval lies at or below one point.
 */
function verdict(row: Row): string {
  const points = row.points;
  if (points === undefined) return '';
  const { median: middle, interval } = points;
  if (interval === null) return `${signedPoints(middle)} points; ${SETS} sets cannot decide (6 at least)`;
  const span = `${signedPoints(middle)} points (95%: ${signedPoints(interval.low)} to ${signedPoints(interval.high)})`;
  // A diagnostic variant is not wsgi-status: no verdict.
  if (!OURS.includes(row.variant)) return `${span} (diagnostic)`;
  if (interval.high <= TARGET_POINTS) return `${span} ✅`;
  if (interval.low > TARGET_POINTS) return `${span} ❌`;
  return `${span} undecided`;
}

/** RSS and heap of a wsgi-status server after 10,000 and after MEMORY_REQUESTS requests, after a GC each time. */
async function benchMemory(): Promise<{ small: Usage; large: Usage; requests: number } | null> {
  if (MEMORY_REQUESTS <= 0) return null;
  const server = await startServer('http', 'wsgi-status', ['--expose-gc']);
  try {
    await load(server.port, { amount: 10_000 });
    const small = await server.usage(true);
    let done = 10_000;
    while (done < MEMORY_REQUESTS) {
      const batch = Math.min(200_000, MEMORY_REQUESTS - done);
      await load(server.port, { amount: batch });
      done += batch;
      process.stderr.write(`  memory: ${done} requests\n`);
    }
    const large = await server.usage(true);
    return { small, large, requests: done };
  } finally {
    server.stop();
  }
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  let kernel = '';
  try {
    kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim();
  } catch {}
  return `${cpus().length} × ${cpu}, ${kernel}, Node ${process.version}; servers pinned to core 0 and load (${hasWrk ? 'wrk' : 'autocannon'}) to core 1: ${hasTaskset ? 'yes' : 'no (no taskset)'}`;
}

async function main(): Promise<void> {
  if (hasTaskset && !process.env.BENCH_PINNED) {
    // Re-run this harness (the load generator) on core 1.
    const result = spawnSync('taskset', ['-c', '1', process.execPath, '--import', 'tsx', ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_PINNED: '1' },
    });
    process.exit(result.status ?? 1);
  }
  // The status files go where README tells users to put them: tmpfs (/dev/shm) where there is one.
  benchDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'wsgi-status-bench-'));
  process.on('exit', () => rmSync(benchDir, { recursive: true, force: true }));
  const rows: Row[] = [];
  for (const framework of selected) {
    process.stderr.write(`${framework}\n`);
    const measured = await benchFramework(framework);
    for (const row of measured) {
      process.stderr.write(
        `  ${row.variant}: ${row.cpu.toFixed(1)} µs/request, × bare ${row.ratio.toFixed(3)} (${row.ratioMin.toFixed(3)}–${row.ratioMax.toFixed(3)})${row.floor ? `, × floor ${row.floor.ratio.toFixed(3)}` : ''}\n`,
      );
    }
    rows.push(...measured);
  }
  const shares = new Map<string, number>();
  for (const framework of selected) {
    process.stderr.write(`profile ${framework}\n`);
    shares.set(framework, await profileShare(framework, (port, seconds) => load(port, { seconds }), serverExec));
  }
  process.stderr.write('status-file ticks\n');
  const ticks = process.env.BENCH_TICKS === '0' ? [] : await measureTicks([1, 4, 8]);
  process.stderr.write('memory\n');
  const memory = await benchMemory();

  const lines: string[] = [];
  lines.push(
    `Command: \`${benchSettings()}npm run bench\` (${SETS} sets of fresh processes × ${ROUNDS} rounds × ${SECONDS} s; the variants of a framework loaded side by side on one core, ${CONNECTIONS} connections each). Machine: ${machine()}.`,
    '',
  );
  lines.push(
    '| framework | variant | CPU µs/request | × bare (median, min–max) | × floor, per round (median, min–max) | req/s | p99 latency ms | points above the floor, median over sets (95% interval), target ≤ +1.0 |',
  );
  lines.push('|---|---|---:|---|---|---:|---:|---|');
  for (const row of rows) {
    const toFloor = row.floor ? `${fmt(row.floor.ratio)} (${fmt(row.floor.min)}–${fmt(row.floor.max)})` : '–';
    lines.push(
      `| ${row.framework} | ${variantLabel(row.variant)} | ${fmt(row.cpu, 1)} | ${fmt(row.ratio)} (${fmt(row.ratioMin)}–${fmt(row.ratioMax)}) | ${toFloor} | ${Math.round(row.rps)} | ${fmt(row.p99, 2)} | ${verdict(row)} |`,
    );
  }
  lines.push('');
  const peersBeaten = selected.map((framework) => {
    const ours = rows.find((r) => r.framework === framework && r.variant === 'wsgi-status');
    const peers = rows.filter((r) => r.framework === framework && !['bare', 'floor', ...OURS, ...DIAGNOSTIC].includes(r.variant));
    if (!ours || peers.length === 0) return `${framework}: not measured (BENCH_VARIANTS)`;
    return `${framework}: ${peers.every((p) => p.ratio > ours.ratio) ? 'below every peer ✅' : 'NOT below every peer ❌'}`;
  });
  lines.push(`Overhead against the peers, same run: ${peersBeaten.join('; ')}.`, '');
  lines.push(
    "Share of the wsgi-status server's busy CPU spent in wsgi-status code (V8 CPU profile, same load; inclusive of the listeners it registers and the ticks): " +
      [...shares].map(([framework, share]) => `${framework} ${(share * 100).toFixed(2)}%`).join(', ') +
      '.',
    '',
  );
  lines.push(
    '| status file in | processes sharing it | CPU ms per tick (median) | mean | mean after the first 20 | p99 | first 20 ticks (median) | wall ms per tick (median) | mean at one tick a second | target (at one tick a second) |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const tick of ticks) {
    lines.push(
      `| ${tick.where} | ${tick.processes} | ${fmt(tick.cpuMedian, 2)} | ${fmt(tick.cpuMean, 2)} | ${fmt(tick.cpuSteadyMean, 2)} | ${fmt(tick.cpuP99, 2)} | ${fmt(tick.cpuColdMedian, 2)} | ${fmt(tick.wallMedian, 2)} | ${tick.cpuAtIntervalMean === undefined ? '' : fmt(tick.cpuAtIntervalMean, 2)} | ${tick.cpuAtIntervalMean === undefined ? '' : `< 2 ms ${tick.cpuAtIntervalMean < 2 ? '✅' : '❌'}`} |`,
    );
  }
  lines.push('');
  if (memory) {
    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    lines.push(
      `Memory of an http server with wsgi-status, after a GC: ${mb(memory.small.rss)} MiB RSS / ${mb(memory.small.heapUsed)} MiB heap after 10,000 requests; ` +
        `${mb(memory.large.rss)} MiB RSS / ${mb(memory.large.heapUsed)} MiB heap after ${memory.requests.toLocaleString('en')} requests ` +
        `(heap ${memory.large.heapUsed - memory.small.heapUsed >= 0 ? '+' : ''}${((memory.large.heapUsed - memory.small.heapUsed) / 1024).toFixed(0)} KiB).`,
    );
  }
  const markdown = `${lines.join('\n')}\n`;
  writeFileSync(OUT, markdown);
  process.stdout.write(markdown);
}

await main();
