/**
 * A node:cluster primary for test/rolling.test.ts: WORKERS workers of
 * app.mjs, each given its slot (WORKER_ID = 1..WORKERS). On the line
 * "restart" on stdin it restarts them one by one, as apps do their own
 * rolling restarts: fork the replacement with the same WORKER_ID, wait until
 * it listens, then shut the old one down gracefully and disconnect it.
 *
 * stdout: one JSON object a line: {type: 'listening', slot, pid},
 * {type: 'exit', pid, code, signal}, {type: 'restarted'}.
 * When stdin closes (the test is gone) it kills its workers and exits.
 */
import cluster from 'node:cluster';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const count = Number(process.env.WORKERS ?? 4);
cluster.setupPrimary({ exec: fileURLToPath(new URL('./app.mjs', import.meta.url)) });

const out = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const bySlot = new Map();

function fork(slot) {
  const worker = cluster.fork({ WORKER_ID: String(slot) });
  return new Promise((resolve) => {
    worker.once('listening', () => {
      out({ type: 'listening', slot, pid: worker.process.pid });
      resolve(worker);
    });
  });
}

cluster.on('exit', (worker, code, signal) => out({ type: 'exit', pid: worker.process.pid, code, signal }));

async function restart() {
  for (let slot = 1; slot <= count; slot++) {
    const old = bySlot.get(slot);
    bySlot.set(slot, await fork(slot));
    old.send('shutdown');
    old.disconnect();
    await new Promise((resolve) => old.once('exit', resolve));
  }
  out({ type: 'restarted' });
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line.trim() === 'restart') void restart();
  })
  .on('close', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    process.exit(0);
  });

for (let slot = 1; slot <= count; slot++) bySlot.set(slot, await fork(slot));
