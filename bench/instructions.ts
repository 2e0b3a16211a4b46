/**
 * `npm run bench:instructions`: what a request costs in machine instructions,
 * counted by valgrind's callgrind, for the bare server, the floor and
 * wsgi-status on `node:http`, Express and Koa (and, on the frameworks,
 * wsgi-status through `instrument(server)`). Instructions, unlike CPU time,
 * do not depend on what else the machine is doing, so this is the figure to
 * compare between two versions of the library.
 *
 * One sample is one fresh server process under callgrind: WARM-UP requests
 * bring V8 to its steady tier, then callgrind's counters are zeroed, REQUESTS
 * requests are counted, and the counters are dumped (the server calls
 * `os.getPriority()` and `os.hostname()`, which nothing else in it calls, and
 * callgrind zeroes and dumps before those libuv functions:
 * `--zero-before`/`--dump-before`). The window is counted directly, in one
 * process, so nothing about start-up or exit has to cancel out.
 *
 * What used to move a run by up to 6% (two processes per figure, FEW vs MANY
 * requests from autocannon on 8 connections), and how it is pinned here:
 * - batching: how many requests a loop iteration found ready depended on how
 *   fast the load generator ran against the server under valgrind, i.e. on
 *   the machine's load. Here one keep-alive connection sends one request at
 *   a time, for the warm-up and the window alike;
 * - garbage collection: a scavenge or a mark-compact landing inside or
 *   outside the window. The window starts and ends with a scavenge, so it
 *   pays exactly for what its requests allocated;
 *   `--predictable-gc-schedule` fixes the heap's growth (otherwise sized from
 *   measured GC speed, i.e. wall time) and turns off the memory reducer (a
 *   timer), and `--single-threaded-gc` does all of it on the counted thread;
 *   Express promotes about 10 KB a request (Express's and Node's own
 *   objects: its floor and bare do the same), so a mark-compact and its
 *   sweeping came every ~1,000 requests, about 50,000 instructions a request
 *   when one landed in a window of 1,000 and 0 when none did: two samples of
 *   the Express middleware read 658,706 and 700,295. With
 *   `--initial-old-space-size=512` the old generation does not fill in a
 *   sample's life, so no mark-compact runs at all: the count is the requests'
 *   own work and their scavenges (retention is what `npm run bench`'s memory
 *   check measures). No full GC is forced either: it deoptimises the code
 *   that held objects it frees, which then is optimised again in the window;
 * - JIT tiers: optimised code was installed by a background thread whenever
 *   valgrind scheduled it. `--no-concurrent-recompilation` compiles on the
 *   main thread at the request that triggers it, and the warm-up is long
 *   enough that every hot function is optimised before the window;
 * - timers that fire per second of wall time rather than per request, which
 *   under valgrind (50 times slower) weigh 50 times more: the status file is
 *   written once an hour (a sample whose window held a write is discarded
 *   and run again), and wsgi-status samples the event-loop delay ten times
 *   per interval;
 * - V8's per-process randomness: its random seed places the heap and seeds
 *   the hash tables and `Math.random()`. Unseeded, one process in six read
 *   0.6% higher than the rest. Run N of every variant gets `--random-seed=N`,
 *   so a sample repeats exactly, and the median is over several seeds: one
 *   seed alone can land a variant in a mode (which of Node's own property
 *   loads V8 compiles as generic ones, about 360 instructions a request)
 *   that another variant's code shape and seed happen to avoid.
 * Only the main thread is counted; with the flags above it does all of the
 * process's JavaScript, compilation and GC work.
 *
 * Each variant is sampled RUNS times in fresh processes, the runs interleaved
 * across variants (run 1 of every variant, then run 2, ...) so that whatever
 * drifts hits all alike; the table gives the median with min–max.
 *
 * Fastify is left out by default: under valgrind, with the wsgi-status plugin
 * registered, Node's `process.nextTick` and `endReadable` fall to a V8 runtime
 * call for their `{ [symbol]: … }` literals, 30 times per request (+38,000
 * instructions), which does not show outside valgrind (`npm run bench` puts
 * Fastify's CPU time per request with the plugin within a few percent of
 * bare's), and not even under valgrind once a second monitor exists in the
 * process. Its counts say nothing about the library; BENCH_FRAMEWORKS=fastify
 * runs it anyway.
 *
 * Environment: BENCH_RUNS (default 3), BENCH_WARMUP and BENCH_REQUESTS (requests
 * of warm-up and counted; defaults per framework below),
 * BENCH_FRAMEWORKS (comma list, default http,express,koa), BENCH_VARIANTS
 * (comma list, default: bare, floor, wsgi-status and, on the frameworks,
 * instrument; on node:http, register), BENCH_KEEP (keep the callgrind files). Needs valgrind.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { forkServer } from './fork-server.ts';
import { median } from './stats.ts';
import { benchSettings, variantLabel } from './variants.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/**
 * Requests of warm-up, then counted, per framework. With the flags below,
 * `--trace-opt` over 8,000 more requests shows nothing optimised after 8,000
 * on node:http; on Koa and Express the last request-path function
 * (`onParserExecuteCommon`, Express's `set`) is optimised by about 8,000, and
 * only small functions of timers and promises (`get body`, `get`) later.
 * Express costs ten times what node:http does per request, so it counts fewer.
 */
const WINDOWS: Record<string, { warmup: number; requests: number }> = {
  http: { warmup: 8_000, requests: 4_000 },
  koa: { warmup: 8_000, requests: 2_000 },
  express: { warmup: 8_000, requests: 1_000 },
  fastify: { warmup: 8_000, requests: 2_000 },
};
const windowOf = (framework: string) => ({
  warmup: Number(process.env.BENCH_WARMUP ?? WINDOWS[framework]?.warmup ?? 6_000),
  requests: Number(process.env.BENCH_REQUESTS ?? WINDOWS[framework]?.requests ?? 2_000),
});
const FRAMEWORKS = (process.env.BENCH_FRAMEWORKS ?? 'http,express,koa').split(',');
const variantsOf = (framework: string) =>
  (process.env.BENCH_VARIANTS ?? `bare,floor,wsgi-status,${framework === 'http' ? 'register' : 'instrument'}`).split(',');
const PARALLEL = Math.max(1, Math.min(2, cpus().length));
/** V8 flags that pin GC and JIT placement (see above). */
const NODE_FLAGS = [
  '--expose-gc',
  '--predictable-gc-schedule',
  '--single-threaded-gc',
  '--no-concurrent-recompilation',
  // Tier up after a sixteenth of V8's usual budget (67,584), so the warm-up reaches the steady tier sooner.
  '--interrupt-budget=4096',
  // No mark-compact in a sample's life (see above).
  '--initial-old-space-size=512',
];

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');

/**
 * One keep-alive connection that sends one request at a time. The same
 * connection serves the warm-up and the counted window: a connection's end
 * runs code the requests do not (Readable's end of stream), which V8 then
 * deoptimises and compiles again, inside the window if it ended there.
 */
class Client {
  private readonly socket: Socket;
  private pending = '';
  private left = 0;
  private done: (() => void) | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
  }

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new Client(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends `count` requests, one after the other. */
  send(count: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.left = count;
      this.done = resolve;
      this.socket.once('close', () => this.left > 0 && reject(new Error(`connection closed, ${this.left} requests left`)));
      this.socket.write(REQUEST);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.pending += chunk;
    for (;;) {
      const length = responseLength(this.pending);
      if (length === 0) return;
      this.pending = this.pending.slice(length);
      if (--this.left > 0) this.socket.write(REQUEST);
      else this.done?.();
    }
  }
}

/** The length of the complete 200 response at the start of `text`, or 0 while incomplete. */
function responseLength(text: string): number {
  const head = text.indexOf('\r\n\r\n');
  if (head === -1) return 0;
  if (!text.startsWith('HTTP/1.1 200 ')) throw new Error(`unexpected response: ${text.slice(0, 40)}`);
  const header = text.slice(0, head);
  const length = /\r\ncontent-length: *(\d+)/i.exec(header);
  if (length) {
    const end = head + 4 + Number(length[1]);
    return text.length >= end ? end : 0;
  }
  const chunked = text.indexOf('\r\n0\r\n\r\n', head);
  return chunked === -1 ? 0 : chunked + 7;
}

/** Sends a message to the server and waits for its answer of type `answer`. */
function ask(child: import('node:child_process').ChildProcess, type: string, answer: string): Promise<{ ticked?: boolean }> {
  return new Promise((resolve) => {
    const onMessage = (message: { type: string; ticked?: boolean }) => {
      if (message.type !== answer) return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.send({ type });
  });
}

/** Instructions per request of the main thread over one counted window, or null when the status file was written in it. */
async function sample(framework: string, variant: string, run: number, dir: string): Promise<number | null> {
  // A peer's name may hold a slash (`@fastify/under-pressure`): not in a file name.
  const out = join(dir, `cg.${framework}.${variant.replace(/[^\w.-]/g, '_')}.${run}.${Date.now()}`);
  const { child, port, exited } = await forkServer(framework, variant, {
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      '-q',
      '--separate-threads=yes',
      '--zero-before=uv_os_getpriority',
      '--dump-before=uv_os_gethostname',
      `--callgrind-out-file=${out}`,
      process.execPath,
      ...NODE_FLAGS,
      `--random-seed=${run}`,
      '--import',
      'tsx',
    ],
    env: { BENCH_DIR: dir, BENCH_INTERVAL: '3600000' },
  });
  const { warmup, requests } = windowOf(framework);
  const client = await Client.open(port);
  // No full GC anywhere: one deoptimises the code that held objects it frees
  // ("weak objects"), and Koa's `set body` then took 3,000 requests to be
  // optimised again, into the window. The window begins after a scavenge.
  await client.send(warmup);
  await ask(child, 'zero', 'zeroed');
  await client.send(requests);
  const { ticked } = await ask(child, 'dump', 'dumped');
  client.close();
  child.disconnect(); // the server exits normally
  if ((await exited) !== 0) throw new Error(`${framework} ${variant} did not exit cleanly under valgrind`);
  if (ticked) return null;
  // The dump (part 1) of the main thread (thread 1): `<out>.1-01`.
  const name = readdirSync(dir).find((file) => join(dir, file) === `${out}.1-01`);
  if (!name) throw new Error(`no callgrind dump ${out}.1-01`);
  const summary = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, name), 'utf8'));
  if (!summary) throw new Error(`no instruction count in ${name}`);
  // What V8's optimising compiler did inside the window is left out: a
  // function first hot enough there is compiled at the same request in every
  // run, but that is warm-up, not what a request costs (0 once warm).
  const compiling = compiledIn(join(dir, name));
  if (compiling > 0)
    process.stderr.write(
      `  ${framework} ${variant}: ${format(compiling / requests)} instructions per request were V8 compiling (left out)\n`,
    );
  return (Number(summary[1]) - compiling) / requests;
}

/** Instructions the window spent in V8's optimising compiler (0 once the warm-up reached the steady tier). */
function compiledIn(file: string): number {
  const annotated = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { encoding: 'utf8' });
  const line = /^\s*([\d,]+) .*Runtime_CompileOptimized/m.exec(annotated.stdout ?? '');
  return line ? Number(line[1].replaceAll(',', '')) : 0;
}

async function counted(framework: string, variant: string, run: number, dir: string): Promise<number> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const perRequest = await sample(framework, variant, run, dir);
    if (perRequest !== null) return perRequest;
    process.stderr.write(`  ${framework} ${variant}: the status file was written during the window; again\n`);
  }
  throw new Error(`${framework} ${variant}: the status file was written during every window`);
}

const format = (value: number) => Math.round(value).toLocaleString('en');

async function main(): Promise<void> {
  if (spawnSync('valgrind', ['--version']).error) {
    process.stderr.write('bench:instructions needs valgrind (Debian: apt-get install valgrind)\n');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-status-instructions-'));
  const started = Date.now();
  try {
    // Every (framework, variant, run), run-major: run 1 of everything, then run 2...
    const jobs: { framework: string; variant: string; run: number }[] = [];
    for (let run = 1; run <= RUNS; run++)
      for (const framework of FRAMEWORKS) for (const variant of variantsOf(framework)) jobs.push({ framework, variant, run });
    const results = new Map<string, number[]>();
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const { framework, variant, run } = jobs[next++];
        const perRequest = await counted(framework, variant, run, dir);
        const key = `${framework}\t${variant}`;
        results.set(key, [...(results.get(key) ?? []), perRequest]);
        process.stderr.write(`  ${framework} ${variant} run ${run}: ${format(perRequest)} instructions per request\n`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const lines = [
      `Command: \`${benchSettings()}npm run bench:instructions\` (callgrind, main thread; ${RUNS} fresh processes per variant, interleaved; ${FRAMEWORKS.map((framework) => `${framework}: ${windowOf(framework).warmup.toLocaleString('en')} requests of warm-up, then ${windowOf(framework).requests.toLocaleString('en')} counted`).join('; ')}; one request at a time on one keep-alive connection; hello world, Node ${process.version}; ${Math.round((Date.now() - started) / 60_000)} min).`,
      '',
      '| framework | variant | instructions per request, median (min–max) | × bare | × floor |',
      '|---|---|---|---:|---:|',
    ];
    for (const framework of FRAMEWORKS) {
      const medianOf = (variant: string) => {
        const values = results.get(`${framework}\t${variant}`);
        return values ? median(values) : undefined;
      };
      const bare = medianOf('bare');
      const floor = medianOf('floor');
      for (const variant of variantsOf(framework)) {
        const values = results.get(`${framework}\t${variant}`) ?? [];
        const value = median(values);
        const spread = `${format(Math.min(...values))}–${format(Math.max(...values))}`;
        const ratio = (base: number | undefined) => (base ? (value / base).toFixed(3) : '–');
        lines.push(
          `| ${framework} | ${variantLabel(variant)} | ${format(value)} (${spread}) | ${ratio(bare)} | ${ratio(floor)} |`,
        );
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    if (process.env.BENCH_KEEP) process.stderr.write(`callgrind files kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
