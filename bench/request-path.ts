/**
 * `npm run bench:request-path`: what the request path itself costs, in
 * nanoseconds of CPU per request, with no server, no socket I/O and no tick.
 *
 * `npm run bench` loads real servers side by side, where a request costs
 * about 60 µs and one point is 600 ns, and its spread is wider than the
 * request path. Here each variant is its own fresh process, pinned to one
 * core where `taskset` exists, that makes real `IncomingMessage` /
 * `ServerResponse` pairs on 8 keep-alive sockets, begins each request the
 * variant's way, and ends it the way node:http does (`destroyed`, then
 * `'close'`). The processes of all variants are interleaved, so a drifting
 * machine hits them alike; each reports the median of its measured rounds,
 * and the table gives the median over processes with min–max.
 *
 * Variants: `bare` (nothing), `floor` (an in-flight counter and one shared
 * `'close'` listener, as in the other benchmarks), `clock` (the floor plus the
 * two clock reads that uWSGI's `avg_rt` and `running_time` need: the part of
 * the request path no implementation can drop) and `wsgi-status`
 * (`monitor.begin()`, the path every adapter takes).
 *
 * Environment: BENCH_PROCESSES per variant (default 5), BENCH_REQUESTS per
 * round (default 200,000), BENCH_ROUNDS measured after 4 warm-up rounds
 * (default 8).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canPin } from './fork-server.ts';
import { median } from './stats.ts';

const VARIANTS = ['bare', 'floor', 'clock', 'wsgi-status'] as const;
type Variant = (typeof VARIANTS)[number];
const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 5);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const WARM_UP_ROUNDS = 4;

/** One process: the variant's median CPU ns per request over its measured rounds. */
async function measure(variant: Variant): Promise<number> {
  const { now: clock } = await import('../src/model/clock.ts');
  const { WsgiStatusMonitor } = await import('../src/monitor.ts');
  let inFlight = 0;
  let clockSum = 0;
  const floorEnd = () => {
    inFlight--;
  };
  const clockEnd = () => {
    inFlight--;
    clockSum += clock();
  };
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-status-request-path-'));
  // An interval of an hour: no tick inside the measured rounds.
  const monitor = new WsgiStatusMonitor(join(dir, 'status.json'), { interval: 3_600_000, onError: () => {} });
  const begin: (req: IncomingMessage, res: ServerResponse) => void = {
    bare: () => {},
    floor: (_req: IncomingMessage, res: ServerResponse) => {
      inFlight++;
      res.on('close', floorEnd);
    },
    clock: (_req: IncomingMessage, res: ServerResponse) => {
      inFlight++;
      clockSum -= clock();
      res.on('close', clockEnd);
    },
    'wsgi-status': (req: IncomingMessage, res: ServerResponse) => monitor.begin(req, res),
  }[variant];
  const sockets = Array.from({ length: 8 }, () => new Socket());
  const request = (i: number) => {
    const req = new IncomingMessage(sockets[i & 7]);
    req.method = 'GET';
    req.url = '/';
    const res = new ServerResponse(req);
    begin(req, res);
    res.statusCode = 200;
    // As node:http ends a response: destroyed first, then 'close'.
    (res as { destroyed: boolean }).destroyed = true;
    res.emit('close');
  };
  const perRequest: number[] = [];
  for (let round = 0; round < WARM_UP_ROUNDS + ROUNDS; round++) {
    const before = process.cpuUsage();
    for (let i = 0; i < REQUESTS; i++) request(i);
    const spent = process.cpuUsage(before);
    if (round >= WARM_UP_ROUNDS) perRequest.push(((spent.user + spent.system) * 1000) / REQUESTS);
  }
  await monitor.close();
  rmSync(dir, { recursive: true, force: true });
  if (inFlight !== 0 || Number.isNaN(clockSum)) throw new Error(`${variant}: ${inFlight} requests never ended`);
  return median(perRequest);
}

function main(): void {
  const pinned = canPin();
  const samples = new Map<Variant, number[]>(VARIANTS.map((variant) => [variant, []]));
  for (let run = 0; run < PROCESSES; run++) {
    for (const variant of VARIANTS) {
      const node = [process.execPath, '--import', 'tsx', import.meta.filename, '--child', variant];
      const [command, ...args] = pinned ? ['taskset', '-c', '1', ...node] : node;
      const output = execFileSync(command, args, { encoding: 'utf8' });
      samples.get(variant)?.push(Number(output.trim()));
    }
    process.stderr.write(`  run ${run + 1}/${PROCESSES}\n`);
  }
  const floor = median(samples.get('floor') ?? []);
  const fmt = (ns: number) => ns.toFixed(0);
  const lines = [
    `Command: \`npm run bench:request-path\` (${PROCESSES} fresh processes per variant, interleaved; ${WARM_UP_ROUNDS} warm-up and ${ROUNDS} measured rounds of ${REQUESTS.toLocaleString('en-US')} requests each). Node ${process.version}; pinned to core 1: ${pinned ? 'yes' : 'no'}.`,
    '',
    '| variant | CPU ns/request (median over processes, min–max) | above the floor, ns |',
    '|---|---|---:|',
  ];
  for (const variant of VARIANTS) {
    const values = samples.get(variant) ?? [];
    const mid = median(values);
    lines.push(
      `| ${variant} | ${fmt(mid)} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))}) | ${variant === 'bare' ? '' : fmt(mid - floor)} |`,
    );
  }
  console.log(lines.join('\n'));
}

if (process.argv[2] === '--child') console.log(await measure(process.argv[3] as Variant));
else main();
