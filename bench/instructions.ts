/**
 * `npm run bench:instructions`: what a request costs in machine instructions,
 * counted by valgrind's callgrind, for the bare server, the floor and
 * wsgi-status on `node:http`, Express and Koa (and, on the frameworks,
 * wsgi-status through `instrument(server)`). Instructions, unlike CPU time,
 * do not depend on what else the machine is doing, so this is the figure to
 * compare between two versions of the library.
 *
 * Each variant runs twice under callgrind, serving FEW and then MANY requests
 * (autocannon, keep-alive); the difference divided by MANY − FEW is the
 * steady-state cost of one request, with start-up, warm-up and exit cancelled
 * out. What remains uncertain (V8's garbage collections and compilations do
 * not land at the same request twice) is a few percent; repeat a run before
 * trusting a smaller difference. The status file is written once an
 * hour, so only the request path is counted: under valgrind a request takes
 * about 50 times longer, and a tick per second would weigh 50 times more
 * than it does in real life (the tick is measured by `npm run bench`).
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
 * Environment: BENCH_FEW (default 5,000), BENCH_MANY (default 25,000),
 * BENCH_FRAMEWORKS (comma list, default http,express,koa),
 * BENCH_VARIANTS (comma list, default: bare, floor, wsgi-status and, on the
 * frameworks, instrument; on node:http, register). Needs valgrind; takes about 6 minutes per
 * framework on 2 cores (two variants at a time).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { forkServer } from './fork-server.ts';
import { variantLabel } from './variants.ts';

const FEW = Number(process.env.BENCH_FEW ?? 5_000);
const MANY = Number(process.env.BENCH_MANY ?? 25_000);
const FRAMEWORKS = (process.env.BENCH_FRAMEWORKS ?? 'http,express,koa').split(',');
const variantsOf = (framework: string) =>
  (process.env.BENCH_VARIANTS ?? `bare,floor,wsgi-status,${framework === 'http' ? 'register' : 'instrument'}`).split(',');
const PARALLEL = Math.max(1, Math.min(2, cpus().length));

/**
 * Instructions of the main thread of one server process that served
 * `requests` requests: JavaScript, the request path, the main thread's share
 * of garbage collection. V8's background threads (optimising compiler, GC
 * helpers) are left out: how much of their work lands inside the counted
 * window varies by thousands of instructions per request from run to run.
 */
async function countInstructions(framework: string, variant: string, requests: number, dir: string): Promise<number> {
  const out = join(dir, `callgrind.${framework}.${variant}.${requests}.out`);
  const { child, port, exited } = await forkServer(framework, variant, {
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      '-q',
      '--separate-threads=yes',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--import',
      'tsx',
    ],
    env: { BENCH_DIR: dir, BENCH_INTERVAL: '3600000' },
  });
  await new Promise<void>((resolve, reject) =>
    autocannon({ url: `http://127.0.0.1:${port}/`, connections: 8, amount: requests }, (error, result) => {
      if (error) reject(error);
      else if (result.errors + result.non2xx > 0)
        reject(new Error(`${framework} ${variant}: ${result.errors + result.non2xx} failed requests`));
      else resolve();
    }),
  );
  child.disconnect(); // the server exits normally, so callgrind writes its counts
  if ((await exited) !== 0) throw new Error(`${framework} ${variant} did not exit cleanly under valgrind`);
  // One file per thread (--separate-threads): <out>-01 is the main thread.
  const summary = /^(?:summary|totals): (\d+)/m.exec(readFileSync(`${out}-01`, 'utf8'));
  if (!summary) throw new Error(`no instruction count in ${out}-01`);
  return Number(summary[1]);
}

async function perRequest(framework: string, variant: string, dir: string): Promise<number> {
  const few = await countInstructions(framework, variant, FEW, dir);
  const many = await countInstructions(framework, variant, MANY, dir);
  return (many - few) / (MANY - FEW);
}

async function main(): Promise<void> {
  if (spawnSync('valgrind', ['--version']).error) {
    process.stderr.write('bench:instructions needs valgrind (Debian: apt-get install valgrind)\n');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-status-instructions-'));
  try {
    const lines = [
      `Command: \`npm run bench:instructions\` (callgrind; ${MANY.toLocaleString('en')} − ${FEW.toLocaleString('en')} requests, hello world, Node ${process.version}).`,
      '',
      '| framework | variant | instructions per request (main thread) | × bare |',
      '|---|---|---:|---:|',
    ];
    for (const framework of FRAMEWORKS) {
      const variants = variantsOf(framework);
      const results = new Map<string, number>();
      for (let i = 0; i < variants.length; i += PARALLEL) {
        const batch = variants.slice(i, i + PARALLEL);
        const counted = await Promise.all(batch.map((variant) => perRequest(framework, variant, dir)));
        for (const [j, variant] of batch.entries()) {
          results.set(variant, counted[j]);
          process.stderr.write(`  ${framework} ${variant}: ${Math.round(counted[j])} instructions per request\n`);
        }
      }
      const bare = results.get('bare');
      for (const [variant, count] of results) {
        const ratio = bare ? (count / bare).toFixed(3) : '–';
        lines.push(`| ${framework} | ${variantLabel(variant)} | ${Math.round(count).toLocaleString('en')} | ${ratio} |`);
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    if (process.env.BENCH_KEEP) process.stderr.write(`callgrind files kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
