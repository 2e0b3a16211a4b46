/**
 * The demo behind `npm start`: a 4-worker node:cluster Express app with
 * wsgi-status, its status file and stats socket in a temporary directory, a
 * little varied load (fast, slow and failing requests) driven from the
 * primary, `wsgi-status top` showing the workers go busy and idle, and the
 * live status page in the browser, served by a `wsgi-status serve
 * --stats-http` sidecar on 127.0.0.1 (the workers keep the unix socket for top).
 *
 * Stops on Ctrl-C, on `q` in the live view, or after DEMO_SECONDS (default
 * 60; 0 runs until stopped), and leaves no process or file behind.
 * Environment: DEMO_SECONDS, DEMO_WORKERS (default 4).
 */
import { spawn } from 'node:child_process';
import cluster from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { wsgiStatus } from 'wsgi-status';

if (cluster.isPrimary) await primary();
else worker();

async function primary() {
  const seconds = Number(process.env.DEMO_SECONDS ?? 60);
  const workers = Number(process.env.DEMO_WORKERS ?? 4);
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-status-demo-'));
  const statusFile = join(dir, 'status.json');
  const statsSocket = join(dir, 'stats.sock');

  const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const sidecar = spawn(process.execPath, [cli, 'serve', statusFile, '--stats', '127.0.0.1:0', '--stats-http'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // It prints "listening on 127.0.0.1:PORT (http), ..." once it listens.
  const pagePort = new Promise((resolve) => {
    let said = '';
    sidecar.stdout.on('data', (chunk) => {
      said += chunk;
      const port = /listening on 127\.0\.0\.1:(\d+)/.exec(said)?.[1];
      if (port) resolve(port);
    });
    sidecar.once('exit', () => resolve(null));
  });

  for (let i = 0; i < workers; i++) cluster.fork({ STATUS_FILE: statusFile, STATS_SOCKET: statsSocket });
  // Workers listen on port 0: node:cluster gives them all the same port.
  // The first TCP listen: each worker's stats socket (a unix path, port -1) is announced too.
  const port = await new Promise((resolve) => {
    const onListening = (_worker, address) => {
      if (!(address.port > 0)) return;
      cluster.off('listening', onListening);
      resolve(address.port);
    };
    cluster.on('listening', onListening);
  });
  await new Promise((resolve) => setTimeout(resolve, 300));

  console.log(`wsgi-status demo: ${workers} workers on http://127.0.0.1:${port}/`);
  console.log(`  status file:  ${statusFile}`);
  console.log(`  stats socket: ${statsSocket}   (try: nc -U ${statsSocket})`);
  const page = await pagePort;
  console.log(`  status page:  ${page ? `http://127.0.0.1:${page}/status   (open it in a browser)` : 'unavailable (see above)'}`);
  console.log(`  stop with Ctrl-C${seconds > 0 ? ` (or wait ${seconds} s)` : ''}\n`);

  let stopping = false;
  let sent = 0;
  const load = drive(
    port,
    () => stopping,
    () => sent++,
  );
  await new Promise((resolve) => setTimeout(resolve, 1500));

  const top = spawn(process.execPath, [cli, 'top', statsSocket], { stdio: 'inherit' });

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    top.kill('SIGTERM');
    sidecar.kill('SIGTERM');
    await load;
    // Each worker closes its server and its monitor (removing its slot), then exits.
    const exits = Object.values(cluster.workers ?? {}).map((w) => new Promise((resolve) => w.once('exit', resolve)));
    if (sidecar.exitCode === null && sidecar.signalCode === null)
      exits.push(new Promise((resolve) => sidecar.once('exit', resolve)));
    for (const w of Object.values(cluster.workers ?? {})) w.process.kill('SIGTERM');
    await Promise.all(exits);
    rmSync(dir, { recursive: true, force: true });
    console.log(`\nwsgi-status demo stopped after ${sent} requests; removed ${statusFile} and ${statsSocket}.`);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  top.on('exit', stop); // q in the live view
  if (seconds > 0) setTimeout(stop, seconds * 1000).unref();
}

/** Waves of fast, slow and failing requests, so workers visibly switch between busy and idle. */
async function drive(port, stopped, count) {
  const request = async (path) => {
    try {
      await (await fetch(`http://127.0.0.1:${port}${path}`)).text();
    } catch {}
    count();
  };
  const client = async (id) => {
    while (!stopped()) {
      const roll = Math.random();
      if (roll < 0.15) await request(`/slow?ms=${300 + Math.floor(Math.random() * 1700)}`);
      else if (roll < 0.2) await request('/fail');
      else await request('/');
      // Every few seconds a lull, so some workers go idle.
      const lull = Math.floor(Date.now() / 3000) % 3 === 0 && id > 1;
      await new Promise((resolve) => setTimeout(resolve, lull ? 400 : 20 + Math.random() * 80));
    }
  };
  await Promise.all(Array.from({ length: 6 }, (_, id) => client(id)));
}

function worker() {
  const app = express();
  const status = wsgiStatus(process.env.STATUS_FILE, { interval: 250, stats: process.env.STATS_SOCKET });
  app.use(status);
  app.get('/', (_req, res) => res.send('hello\n'));
  app.get('/slow', (req, res) => setTimeout(() => res.send('slow\n'), Number(req.query.ms) || 1000));
  app.get('/fail', () => {
    throw new Error('a failing handler (counted in exceptions)');
  });
  // Express logs a handler's error to stderr; the demo keeps the screen for the live view.
  app.use((_error, _req, res, _next) => res.status(500).send('failed\n'));
  const server = app.listen(0, '127.0.0.1');
  const shutdown = () => server.close(() => status.close().then(() => process.exit(0)));
  process.on('SIGTERM', shutdown);
  // Ctrl-C reaches every process of the group: the primary decides when workers stop.
  process.on('SIGINT', () => {});
}
