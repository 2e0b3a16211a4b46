/**
 * One benchmark server in its own process: FRAMEWORK × VARIANT from argv.
 * Reports its port over IPC and answers { type: 'usage' } with its CPU time
 * and memory, and { type: 'gc' } by collecting garbage first.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { getPriority, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const [framework, variant] = process.argv.slice(2);
const statusFile = join(process.env.BENCH_DIR ?? tmpdir(), `bench-${framework}-${variant}-${process.pid}.json`);
const BODY = 'hello world';
// bench:instructions writes the file once an hour: under valgrind a tick per second would weigh 50 times more.
// The diagnostic variants (bench/run.ts) stand in for their originals with
// another interval: `no-tick` for wsgi-status with its tick an hour away,
// `tick-100ms` for wsgi-status ticking ten times as often as by default;
// `clock` for the floor, plus two clock reads.
const HOUR_MS = 3_600_000;
const DIAGNOSTIC_INTERVALS: Record<string, number> = { 'no-tick': HOUR_MS, 'tick-100ms': 100 };
const interval = DIAGNOSTIC_INTERVALS[variant] ?? (process.env.BENCH_INTERVAL ? Number(process.env.BENCH_INTERVAL) : undefined);
const options = interval === undefined ? undefined : { interval };
const kind = variant in DIAGNOSTIC_INTERVALS ? 'wsgi-status' : variant === 'clock' ? 'floor' : variant;
// Loaded by every variant, as src/index.ts is in build(): bare and wsgi-status start from the same modules.
const { instrument } = await import('../src/adapters/http.ts');
const { now: clock } = await import('../src/model/clock.ts');
if (variant === 'register') {
  // What `node --import wsgi-status/register` does, configured the same way: loaded before any server exists.
  process.env.WSGI_STATUS_FILE = statusFile;
  if (options) process.env.WSGI_STATUS_INTERVAL = String(options.interval);
  await import('../src/adapters/register.ts');
}

interface WatchedMonitor {
  lastDocument: unknown;
  options: { interval: number };
}
/** The variant's monitors, to tell bench:instructions whether one wrote the status file. */
const monitors: WatchedMonitor[] = [];
const watched = <T extends { monitor: WatchedMonitor }>(made: T): T => {
  monitors.push(made.monitor);
  return made;
};

/** The least any such middleware can do: an in-flight counter and one shared end listener. */
let inFlight = 0;
function floorEnd(): void {
  inFlight--;
}
/**
 * The `clock` variant: the floor plus the two clock reads that uWSGI's
 * `avg_rt` and `running_time` need (as in bench:request-path), the part of
 * the request path no implementation of those fields can drop.
 */
let clockSum = 0;
function clockEnd(): void {
  inFlight--;
  clockSum += clock();
}
const floorBegin =
  variant === 'clock'
    ? (res: ServerResponse) => {
        inFlight++;
        clockSum -= clock();
        res.on('close', clockEnd);
      }
    : (res: ServerResponse) => {
        inFlight++;
        res.on('close', floorEnd);
      };

async function promClientHttp(): Promise<(req: IncomingMessage, res: ServerResponse) => void> {
  const client = require('prom-client') as typeof import('prom-client');
  const registry = new client.Registry();
  const requests = new client.Counter({
    name: 'http_requests_total',
    help: 'requests',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  const inflight = new client.Gauge({ name: 'http_in_flight', help: 'in flight', registers: [registry] });
  const duration = new client.Histogram({
    name: 'http_duration_seconds',
    help: 'duration',
    labelNames: ['method'],
    registers: [registry],
  });
  return (req, res) => {
    inflight.inc();
    const end = duration.startTimer({ method: req.method });
    res.on('finish', () => {
      inflight.dec();
      end();
      requests.inc({ method: req.method, code: res.statusCode });
    });
  };
}

/** The `instrument` variant: wsgi-status on the framework's http.Server instead of in its middleware chain. */
function serverOf(server: Server): Server {
  if (kind === 'instrument') watched(instrument(server, statusFile, options));
  return server;
}

async function build(): Promise<Server> {
  const { wsgiStatus } = await import('../src/index.ts');
  switch (framework) {
    case 'http': {
      const peer = variant === 'prom-client' ? await promClientHttp() : null;
      const server = createServer((req, res) => {
        if (kind === 'floor') floorBegin(res);
        if (peer) peer(req, res);
        res.setHeader('content-type', 'text/plain');
        res.end(BODY);
      });
      if (kind === 'wsgi-status') watched(instrument(server, statusFile, options));
      return serverOf(server);
    }
    case 'express': {
      const express = require('express') as typeof import('express');
      const app = express();
      if (kind === 'wsgi-status') app.use(watched(wsgiStatus(statusFile, options)));
      if (kind === 'floor')
        app.use((_req, res, next) => {
          floorBegin(res);
          next();
        });
      if (variant === 'express-prom-bundle') app.use(require('express-prom-bundle')({ includeMethod: true, includePath: true }));
      if (variant === 'express-status-monitor') app.use(require('express-status-monitor')());
      app.get('/', (_req, res) => {
        res.type('text/plain').send(BODY);
      });
      return serverOf(createServer(app));
    }
    case 'koa': {
      const Koa = require('koa') as typeof import('koa');
      const app = new Koa();
      if (kind === 'wsgi-status') app.use(watched((await import('../src/adapters/koa.ts')).default(statusFile, options)));
      if (kind === 'floor')
        app.use((ctx, next) => {
          floorBegin(ctx.res);
          return next();
        });
      if (variant === 'prom-client') {
        const peer = await promClientHttp();
        app.use((ctx, next) => {
          peer(ctx.req, ctx.res);
          return next();
        });
      }
      app.use((ctx) => {
        ctx.type = 'text/plain';
        ctx.body = BODY;
      });
      return serverOf(createServer(app.callback()));
    }
    case 'fastify': {
      const Fastify = require('fastify') as typeof import('fastify').default;
      const app = Fastify({ logger: false });
      if (kind === 'wsgi-status')
        await app.register((await import('../src/adapters/fastify.ts')).default, { path: statusFile, ...options });
      if (kind === 'floor')
        app.addHook('onRequest', (_request, reply, done) => {
          floorBegin(reply.raw);
          done();
        });
      if (variant === '@fastify/under-pressure')
        await app.register(require('@fastify/under-pressure'), { maxEventLoopDelay: 60_000 });
      app.get('/', (_request, reply) => {
        reply.type('text/plain').send(BODY);
      });
      await app.ready();
      if (kind === 'wsgi-status') monitors.push(app.wsgiStatus);
      return serverOf(app.server);
    }
    default:
      throw new Error(`unknown framework ${framework}`);
  }
}

const server = await build();
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
});
process.on('message', (message: { type: string }) => {
  // bench:instructions: callgrind zeroes its counters before uv_os_getpriority
  // and dumps them before uv_os_gethostname (nothing else here calls either).
  // The window starts and ends with a scavenge, so it pays for exactly what
  // its requests allocated.
  if (message.type === 'zero') {
    writtenAtZero = lastWritten(); // before the window opens: it is not the requests' work
    globalThis.gc?.({ type: 'minor' });
    getPriority();
    process.send?.({ type: 'zeroed' });
    return;
  }
  if (message.type === 'dump') {
    globalThis.gc?.({ type: 'minor' });
    hostname();
    // A write before the window is the warm-up's; one inside it is counted, and the sample is run again.
    const written = lastWritten();
    process.send?.({ type: 'dumped', ticked: written.some((document, i) => document !== writtenAtZero[i]) });
    return;
  }
  if (message.type === 'gc') globalThis.gc?.();
  const usage = process.cpuUsage();
  const memory = process.memoryUsage();
  process.send?.({
    type: 'usage',
    cpuMicros: usage.user + usage.system,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    inFlight,
    intervals: monitors.map((monitor) => monitor.options.interval),
    clockSum,
  });
});
process.on('disconnect', () => process.exit(0));

/** Each monitor's last written document (a new object per write), in a fixed order. */
let writtenAtZero: unknown[] = [];
function lastWritten(): unknown[] {
  // The register's monitor is made when the server listens, in the registry all adapters share.
  const shared = (globalThis as Record<symbol, Map<string, { monitor: WatchedMonitor }> | undefined>)[
    Symbol.for('wsgi-status.monitors')
  ];
  for (const hold of shared?.values() ?? []) if (!monitors.includes(hold.monitor)) monitors.push(hold.monitor);
  return monitors.map((monitor) => monitor.lastDocument);
}
