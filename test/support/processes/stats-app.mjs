// The app of test/stats-server.test.ts's EACCES case, run as an unprivileged user.
// Plain JavaScript over the built package: it runs from a world-readable copy
// (test/support/private-copy.ts), since the checkout itself may sit in a 0700 directory.
// argv: <status file> <the built http adapter, dist/adapters/http.js>. Env: STATS.
// stdout: one JSON object a line: {type: 'ready', port}, {type: 'error', code, message}.
import { createServer } from 'node:http';

const { instrument } = await import(process.argv[3]);
const out = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const server = createServer((_req, res) => res.end('ok'));
const status = instrument(server, process.argv[2], {
  interval: 100,
  stats: process.env.STATS,
  onError: (error) => out({ type: 'error', code: error.code ?? null, message: error.message }),
});
server.listen(0, '127.0.0.1', async () => {
  await status.monitor.tick();
  await status.monitor.stats?.listen().catch(() => undefined);
  out({ type: 'ready', port: server.address().port });
});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
