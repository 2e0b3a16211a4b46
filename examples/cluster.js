/**
 * node:cluster with 4 Express workers sharing one status file, as uWSGI's
 * workers share one stats document.
 *
 *   npm run build && node examples/cluster.js
 *   curl -s localhost:3000/ ; cat /dev/shm/wsgi-status-example.json
 *
 * Environment: PORT (default 3000), STATUS_FILE (default
 * /dev/shm/wsgi-status-example.json, or the temp dir where /dev/shm is
 * missing), WORKERS (default 4), STATS_SOCKET (a stats socket, default none).
 *
 * Kill a worker with `kill -9 <pid>`: the primary forks a replacement, which
 * takes over the same slot (`id`), counters included, with `respawn_count` + 1.
 * Ctrl-C (or SIGTERM to the primary) stops every worker gracefully: each
 * makes a last write before it exits, and its slot stays listed as `cheap`
 * with its counters (as uWSGI lists a cheaped worker).
 *
 * The same file runs under PM2 in cluster mode (examples/ecosystem.config.cjs):
 * there PM2 is the primary and each instance runs the worker half below.
 */
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { wsgiStatus } from 'wsgi-status';

const port = Number(process.env.PORT ?? 3000);
const statusFile = process.env.STATUS_FILE ?? join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'wsgi-status-example.json');
const workers = Number(process.env.WORKERS ?? 4);

if (cluster.isPrimary) {
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.log(`worker ${worker.process.pid} died (${signal ?? code}); forking a replacement`);
    cluster.fork();
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  // The primary only forwards: each worker closes its own monitor, then the primary exits with the last one.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  console.log(`primary ${process.pid}: ${workers} workers on http://127.0.0.1:${port}/, status file ${statusFile}`);
} else {
  const app = express();
  // First, so it sees every request.
  // STATS_SOCKET (say /run/app/stats.sock): every worker serves the merged document on one shared socket.
  const status = wsgiStatus(statusFile, { stats: process.env.STATS_SOCKET });
  app.use(status);
  app.get('/', (_req, res) => res.send(`hello from ${process.pid}\n`));
  app.get('/slow', (_req, res) => setTimeout(() => res.send('slow\n'), 2000));
  const server = app.listen(port);

  // Graceful stop: finish what is in flight, make the last write (the slot turns cheap), exit.
  // Without a handler of its own the worker would simply die of the signal,
  // and wsgi-status would still make its last write on the way. SIGINT too:
  // PM2 stops instances with it, and Ctrl-C sends it to every process of the group.
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    // Resolves once requests in flight are answered, so the last write counts them.
    await new Promise((resolve) => server.close(resolve));
    await status.close();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
