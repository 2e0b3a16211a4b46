/**
 * What a Prometheus scrape of `/metrics` costs the app, against a JSON
 * stats answer (issue 15): one app process with its own HTTP stats server
 * (statsHttp) and a status file holding 4 workers (the app and 3 sibling
 * processes); the parent sends N sequential requests to `/` (uWSGI's JSON)
 * and N to `/metrics`, alternating over several rounds, and reads the app's
 * CPU time (process.cpuUsage) over IPC before and after each batch.
 *
 * Command: `node --import tsx bench/metrics-cost.ts` (N=2000, 3 rounds).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = Number(process.env.N ?? 2000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SIBLINGS = 3;

type Message = { type: 'ready'; statsPort: number } | { type: 'cpu'; micros: number };

/** The app: a node:http server instrumented with its own HTTP stats server. */
async function app(file: string, serveStats: boolean): Promise<void> {
  const { createServer } = await import('node:http');
  const { instrument } = await import('../src/adapters/http.ts');
  const server = createServer((_req, res) => res.end('ok'));
  const status = instrument(server, file, {
    interval: 100,
    stats: serveStats ? '127.0.0.1:0' : undefined,
    statsHttp: serveStats,
    onError: () => {}, // a skipped tick under a loaded machine is not what this measures
  });
  server.listen(0, '127.0.0.1', async () => {
    await status.monitor.tick();
    await status.monitor.stats?.listen();
    const address = status.monitor.stats?.address;
    process.send?.({ type: 'ready', statsPort: address?.kind === 'tcp' ? address.port : 0 } satisfies Message);
  });
  process.on('message', (message) => {
    if (message !== 'cpu') return;
    const usage = process.cpuUsage();
    process.send?.({ type: 'cpu', micros: usage.user + usage.system } satisfies Message);
  });
  process.on('disconnect', () => process.exit(0));
}

function ask(child: ChildProcess, type: Message['type']): Promise<Message> {
  return new Promise((resolve) => {
    const onMessage = (message: Message) => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    if (type === 'cpu') child.send('cpu');
  });
}

function getBody(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('end', () => resolve(bytes));
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-status-metrics-cost-'));
  const file = join(dir, 'status.json');
  const spawnApp = (serveStats: boolean) =>
    fork(new URL(import.meta.url).pathname, ['app', file, serveStats ? 'stats' : ''], { execArgv: ['--import', 'tsx'] });
  const children = [spawnApp(true), ...Array.from({ length: SIBLINGS }, () => spawnApp(false))];
  try {
    const ready = await Promise.all(children.map((child) => ask(child, 'ready')));
    const statsPort = (ready[0] as Extract<Message, { type: 'ready' }>).statsPort;
    const served = children[0];
    const results: Record<string, number[]> = { '/': [], '/metrics': [] };
    const sizes: Record<string, number> = {};
    for (const path of ['/', '/metrics']) for (let i = 0; i < 200; i++) await getBody(statsPort, path); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of round % 2 === 0 ? ['/', '/metrics'] : ['/metrics', '/']) {
        const before = (await ask(served, 'cpu')) as Extract<Message, { type: 'cpu' }>;
        for (let i = 0; i < N; i++) sizes[path] = await getBody(statsPort, path);
        const after = (await ask(served, 'cpu')) as Extract<Message, { type: 'cpu' }>;
        results[path].push((after.micros - before.micros) / N);
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    console.log(`N=${N} sequential requests per batch, ${ROUNDS} rounds, app CPU µs per answer (user+system):`);
    console.log('| path | body bytes | CPU µs/answer (median) | rounds |');
    console.log('|---|---:|---:|---|');
    for (const path of ['/', '/metrics']) {
      console.log(
        `| ${path === '/' ? '`/` (JSON)' : '`/metrics`'} | ${sizes[path]} | ${median(results[path]).toFixed(1)} | ${results[path].map((v) => v.toFixed(1)).join(', ')} |`,
      );
    }
    console.log(`/metrics ÷ JSON: ${(median(results['/metrics']) / median(results['/'])).toFixed(3)}`);
  } finally {
    for (const child of children) child.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'app') await app(process.argv[3], process.argv[4] === 'stats');
else await main();
