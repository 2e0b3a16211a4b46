/**
 * The cost of one status-file tick (lock + read + merge + atomic write +
 * unlock) when N processes share the file: each process runs its own
 * monitor and ticks every 50 ms; CPU time per tick comes from
 * process.cpuUsage() around each tick.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TICKS = 100;
const EVERY_MS = 50;

export interface TickCost {
  processes: number;
  cpuMedian: number;
  cpuP99: number;
  wallMedian: number;
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

async function child(file: string): Promise<void> {
  const { WsgiStatusMonitor } = await import('../src/monitor.ts');
  const monitor = new WsgiStatusMonitor(file, { interval: 3_600_000, onError: () => {} });
  const cpu: number[] = [];
  const wall: number[] = [];
  await monitor.tick(); // first tick: slot assignment, role detection, imports
  for (let i = 0; i < TICKS; i++) {
    await new Promise((resolve) => setTimeout(resolve, EVERY_MS * (0.5 + Math.random())));
    const usage = process.cpuUsage();
    const started = performance.now();
    await monitor.tick();
    const spent = process.cpuUsage(usage);
    wall.push(performance.now() - started);
    cpu.push((spent.user + spent.system) / 1000);
  }
  await monitor.close();
  process.send?.({ cpu, wall });
}

export async function measureTicks(counts: number[]): Promise<TickCost[]> {
  const results: TickCost[] = [];
  for (const processes of counts) {
    const dir = mkdtempSync(join(tmpdir(), 'wsgi-status-ticks-'));
    const file = join(dir, 'status.json');
    const runs = Array.from(
      { length: processes },
      () =>
        new Promise<{ cpu: number[]; wall: number[] }>((resolve, reject) => {
          const worker = fork(import.meta.filename, ['--tick-child', file], { execArgv: ['--import', 'tsx'] });
          worker.on('message', (message) => resolve(message as { cpu: number[]; wall: number[] }));
          worker.on('exit', (code) => code !== 0 && reject(new Error(`tick child exited with ${code}`)));
        }),
    );
    const samples = await Promise.all(runs);
    const cpu = samples.flatMap((s) => s.cpu);
    const wall = samples.flatMap((s) => s.wall);
    results.push({ processes, cpuMedian: quantile(cpu, 0.5), cpuP99: quantile(cpu, 0.99), wallMedian: quantile(wall, 0.5) });
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

if (process.argv[2] === '--tick-child') await child(process.argv[3]);
else if (import.meta.filename === process.argv[1]) console.log(await measureTicks([1, 4, 8]));
