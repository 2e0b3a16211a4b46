/**
 * A quiet app for test/listen-queues.test.ts: it listens, serves nothing and
 * writes its slot every INTERVAL ms (default 100) to argv[2], for DURATION
 * ms (default 3000). It counts the times it opens /proc/net/tcp (its own
 * listen-queue measurements) by watching fs.openSync, which the measurement
 * uses; nothing else is changed. Counted from WARMUP ms on (default 1000),
 * once the group's processes have all joined (each join changes the
 * addresses, which every process measures at once).
 *
 * stdout: {type: 'ready'} once listening, then {type: 'done', writes, measurements}.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { createServer } from 'node:net';

let measurements = 0;
const openSync = fs.openSync;
fs.openSync = ((path: fs.PathLike, ...rest: unknown[]) => {
  if (path === '/proc/net/tcp' || path === '/proc/net/tcp6') measurements++;
  return (openSync as (...args: unknown[]) => number)(path, ...rest);
}) as typeof fs.openSync;
// Before the library is loaded: its `import { openSync } from 'node:fs'` binds to this one.
syncBuiltinESMExports();

const { WsgiStatusMonitor } = await import('../../../src/monitor.ts');
const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const monitor = new WsgiStatusMonitor(process.argv[2], {
  interval: Number(process.env.INTERVAL ?? 100),
  onError: (error) => process.stdout.write(`${JSON.stringify({ type: 'error', message: error.message })}\n`),
});
monitor.observeServer(server);
let writes = 0;
monitor.on('write', () => writes++);
process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
const warmup = Number(process.env.WARMUP ?? 1000);
await new Promise((resolve) => setTimeout(resolve, warmup));
writes = 0;
measurements = 0;
await new Promise((resolve) => setTimeout(resolve, Number(process.env.DURATION ?? 3000) - warmup));
const counted = { writes, measurements };
await monitor.close();
server.close();
process.stdout.write(`${JSON.stringify({ type: 'done', ...counted })}\n`);
