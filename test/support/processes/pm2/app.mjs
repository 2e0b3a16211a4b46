/**
 * The app PM2 runs in test/pm2.test.ts (cluster and fork mode), as a user
 * would: plain node:http with the built package (`npm run build`). It
 * answers its pid; `/busy?ms=N` busy-waits N ms first (a blocked event loop).
 *
 * Environment: STATUS_FILE, INTERVAL (ms), PORT (0 for any), STATS (a stats
 * socket, optional), HOLDER_FILE (written with this pid whenever this
 * process starts serving STATS), WORKER_ID (the `workerId` option, set by
 * test/support/processes/pm2/rolling.mjs for node:cluster rolling restarts).
 *
 * SIGINT (PM2's stop signal) or the message "shutdown" (a node:cluster
 * primary's): stop accepting, answer what is in flight (each keep-alive
 * connection closed after its current response), close the monitor (its
 * last write), exit.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { instrument } from 'wsgi-status/http';

let stopping = false;
const server = createServer((req, res) => {
  const busy = /^\/busy\?ms=(\d+)/.exec(req.url ?? '');
  if (busy) {
    const until = Date.now() + Number(busy[1]);
    while (Date.now() < until) {
      // A handler that blocks the event loop.
    }
  }
  if (stopping) res.setHeader('connection', 'close');
  res.end(String(process.pid));
});
const status = instrument(server, process.env.STATUS_FILE, {
  interval: Number(process.env.INTERVAL ?? 1000),
  stats: process.env.STATS || undefined,
  workerId: process.env.WORKER_ID ? Number(process.env.WORKER_ID) : undefined,
  onError: (error) => console.error(error.message),
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.send?.('ready'));

if (process.env.HOLDER_FILE) {
  let holding = false;
  setInterval(() => {
    const now = status.monitor.stats?.isListening === true;
    if (now && !holding) writeFileSync(process.env.HOLDER_FILE, String(process.pid));
    holding = now;
  }, 10).unref();
}

function shutdown() {
  if (stopping) return;
  stopping = true;
  // Keep-alive connections would hold the server open: close each once it is idle.
  const idle = setInterval(() => server.closeIdleConnections(), 20);
  // 'close' comes once every connection has ended (a cluster disconnect may have closed the server already).
  server.once('close', async () => {
    clearInterval(idle);
    await status.close();
    process.exit(0);
  });
  if (server.listening) server.close();
}
process.on('SIGINT', shutdown);
process.on('message', (message) => {
  if (message === 'shutdown') shutdown();
});
