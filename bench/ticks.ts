/**
 * The cost of one status-file tick (lock + read + merge + atomic write +
 * unlock) when N processes share the file: each process listens on a port,
 * as an app does (so its ticks measure the listen queues, every fifth quiet
 * tick), runs its own monitor and ticks every 25–75 ms; CPU time per tick comes from
 * process.cpuUsage() around each tick. Measured on each file system a
 * status file is likely to live on: tmpfs (/dev/shm, as README advises)
 * and the disk under the temporary directory.
 *
 * V8 tiers code up by how often it runs, not by the clock, so the first
 * ticks here are what a process's first ticks cost at any interval: the
 * tick's code still interpreted (about twice the warm cost). At the default
 * interval of one second a process spends its first minute or so on such
 * ticks; they are reported apart.
 *
 * Spaced 25–75 ms, the ticks find the caches warm from the last one; a
 * process that ticks once a second finds them cold and pays more for the
 * same tick (measured, 8 processes: about 1.4× at 500 ms). And V8 goes on
 * optimising the tick's code for a long while: one process at one tick a
 * second paid 1.93 ms after 300 ticks, 1.46 after 2,000. So the 8-process
 * runs go on to WARM_TICKS ticks in all, unmeasured and 10 ms apart, and
 * then measure AT_INTERVAL_TICKS ticks at the default interval, one a
 * second: what a long-running app pays (2,000 ticks is its first half
 * hour). The target is on those.
 *
 * The processes start their measured ticks together, once every one of them
 * has written its first: each process that joins changes the group's
 * addresses, which every process then measures at once. Started one by one
 * (tsx takes about a second to load each), that one-off churn filled the
 * first few dozen measured ticks.
 */
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const TICKS = 100;
const EVERY_MS = 50;
/** The first ticks after the first one: the tick's code not yet optimised. */
const COLD_TICKS = 20;
/** Ticks at the default interval (1 s, ±25%), after the fast ones, with this many processes. */
const AT_INTERVAL_TICKS = 20;
const AT_INTERVAL_PROCESSES = 8;
/** Ticks in all before those at the default interval: the tick's code optimised as in a long-running app. */
const WARM_TICKS = 2000;
const WARM_EVERY_MS = 10;
const DEFAULT_INTERVAL_MS = 1000;

export interface TickCost {
  /** Where the file was: the directory and its file system. */
  where: string;
  processes: number;
  cpuMedian: number;
  /** The mean over all ticks, the first COLD_TICKS included. */
  cpuMean: number;
  /**
   * The mean after each process's first COLD_TICKS: what a tick costs once
   * its code is optimised, the group's listen-queue reading every fifth quiet tick included.
   */
  cpuSteadyMean: number;
  /** With AT_INTERVAL_PROCESSES: the mean of the ticks at the default interval, after WARM_TICKS in all. */
  cpuAtIntervalMean?: number;
  /** The median of each process's first COLD_TICKS ticks (after its first). */
  cpuColdMedian: number;
  cpuP99: number;
  wallMedian: number;
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

/** What a child reports: its fast ticks' CPU and wall ms, then its ticks' CPU at the default interval. */
interface ChildSamples {
  cpu: number[];
  wall: number[];
  cpuAtInterval: number[];
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

/** CPU and wall ms of one tick. */
async function timedTick(monitor: { tick(): Promise<void> }): Promise<{ cpu: number; wall: number }> {
  const usage = process.cpuUsage();
  const started = performance.now();
  await monitor.tick();
  const spent = process.cpuUsage(usage);
  return { cpu: (spent.user + spent.system) / 1000, wall: performance.now() - started };
}

async function child(file: string, atInterval: number): Promise<void> {
  const { WsgiStatusMonitor } = await import('../src/monitor.ts');
  const monitor = new WsgiStatusMonitor(file, { interval: 3_600_000, onError: () => {} });
  // Like any app, each process listens: its tick measures the listen queues (of all the processes' addresses).
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  monitor.observeServer(server);
  const cpu: number[] = [];
  const wall: number[] = [];
  await monitor.tick(); // first tick: slot assignment, role detection, imports
  // Every process has joined the file before any measured tick.
  const go = new Promise((resolve) => process.once('message', resolve));
  process.send?.({ ready: true });
  await go;
  for (let i = 0; i < TICKS; i++) {
    await sleep(EVERY_MS * (0.5 + Math.random()));
    const tick = await timedTick(monitor);
    cpu.push(tick.cpu);
    wall.push(tick.wall);
  }
  const cpuAtInterval: number[] = [];
  for (let i = TICKS; atInterval > 0 && i < WARM_TICKS; i++) {
    await sleep(WARM_EVERY_MS);
    await monitor.tick();
  }
  for (let i = 0; i < atInterval; i++) {
    await sleep(DEFAULT_INTERVAL_MS * (0.75 + Math.random() / 2));
    cpuAtInterval.push((await timedTick(monitor)).cpu);
  }
  await monitor.close();
  server.close();
  process.send?.({ cpu, wall, cpuAtInterval });
}

/** Directories to measure in: /dev/shm where it is a tmpfs, and the temporary directory. */
export function tickDirectories(): string[] {
  const directories = [tmpdir()];
  if (existsSync('/dev/shm') && fileSystemOf('/dev/shm') === 'tmpfs' && tmpdir() !== '/dev/shm') directories.unshift('/dev/shm');
  return directories;
}

const FILE_SYSTEMS: Record<number, string> = {
  16914836: 'tmpfs',
  61267: 'ext4',
  1481003842: 'xfs',
  2435016766: 'btrfs',
  2035054128: 'overlayfs',
};

function fileSystemOf(directory: string): string {
  try {
    const type = statfsSync(directory).type;
    return FILE_SYSTEMS[type] ?? `0x${type.toString(16)}`;
  } catch {
    return 'unknown';
  }
}

export async function measureTicks(counts: number[], directories = tickDirectories()): Promise<TickCost[]> {
  const results: TickCost[] = [];
  for (const directory of directories) {
    for (const processes of counts) {
      const dir = mkdtempSync(join(directory, 'wsgi-status-ticks-'));
      const file = join(dir, 'status.json');
      const atInterval = processes === AT_INTERVAL_PROCESSES ? AT_INTERVAL_TICKS : 0;
      const workers = Array.from({ length: processes }, () =>
        fork(import.meta.filename, ['--tick-child', file, String(atInterval)], { execArgv: ['--import', 'tsx'] }),
      );
      let ready = 0;
      const runs = workers.map(
        (worker) =>
          new Promise<ChildSamples>((resolve, reject) => {
            worker.on('message', (message: { ready: true } | ChildSamples) => {
              if (!('ready' in message)) resolve(message);
              else if (++ready === processes) for (const each of workers) each.send({ go: true });
            });
            worker.on('exit', (code) => code !== 0 && reject(new Error(`tick child exited with ${code}`)));
          }),
      );
      const samples = await Promise.all(runs);
      const steady = samples.flatMap((s) => s.cpu.slice(COLD_TICKS));
      const cpu = samples.flatMap((s) => s.cpu);
      const wall = samples.flatMap((s) => s.wall);
      results.push({
        where: `${directory} (${fileSystemOf(directory)})`,
        processes,
        cpuMedian: quantile(cpu, 0.5),
        cpuMean: mean(cpu),
        cpuSteadyMean: mean(steady),
        cpuAtIntervalMean: atInterval > 0 ? mean(samples.flatMap((s) => s.cpuAtInterval)) : undefined,
        cpuColdMedian: quantile(
          samples.flatMap((s) => s.cpu.slice(0, COLD_TICKS)),
          0.5,
        ),
        cpuP99: quantile(cpu, 0.99),
        wallMedian: quantile(wall, 0.5),
      });
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}

if (process.argv[2] === '--tick-child') await child(process.argv[3], Number(process.argv[4]));
else if (import.meta.filename === process.argv[1]) console.log(await measureTicks([1, 4, 8]));
