/**
 * Issue 4, acceptance 9: a soak. 4 node:cluster workers under a steady
 * loopback load for 60 s; a reader that takes no lock reads the status file
 * every 10 ms. Prints each worker's heap (after a full GC) and RSS every 10 s,
 * and exits 1 if the file was ever invalid or missing a live worker, if the
 * counts do not add up, or if heap or RSS grew past the limits below.
 *
 *   node --import tsx test/soak/soak.ts
 *
 * Environment: SOAK_SECONDS (default 60), RATE requests/s (default 400),
 * INTERVAL ms (default 200: five times the ticks of the default 1000).
 * test/cluster.test.ts runs a 10 s version of this.
 */
import { join } from 'node:path';
import type { UwsgiDocument } from '../../src/model/document.ts';
import { ClusterGroup, startLoad, startReader, totalRequests } from '../support/cluster-harness.ts';
import { sleep, tempDir, waitForStatus } from '../support/helpers.ts';

const seconds = Number(process.env.SOAK_SECONDS ?? 60);
const rate = Number(process.env.RATE ?? 400);
const interval = process.env.INTERVAL ?? '200';
const WARM_UP_MS = 5000;
const SAMPLE_EVERY_MS = 10_000;
// RSS climbs some 10 MiB over the first ~15 s (JIT, allocator arenas) and then
// stays put: growth is judged from the first sample at or after this.
const STEADY_FROM_S = 15;
// Flat means: post-GC heap within 2 MiB, RSS within 32 MiB of that sample.
const HEAP_LIMIT = 2 * 1048576;
const RSS_LIMIT = 32 * 1048576;

const mb = (bytes: number) => (bytes / 1048576).toFixed(1).padStart(6);

async function main(): Promise<number> {
  const temp = tempDir('wsgi-status-soak-');
  const file = join(temp.dir, 'status.json');
  const group = new ClusterGroup(4, { STATUS_FILE: file, INTERVAL: interval }, { exposeGc: true });
  try {
    const { pids, port } = await group.listening(4);
    await waitForStatus(file, (d: UwsgiDocument) => d.workers.length === 4);
    console.log(`soak: 4 workers ${pids.join(', ')}, ${rate} req/s for ${seconds} s, interval ${interval} ms, file ${file}`);

    const reader = startReader(file, 10, (document) =>
      pids.every((pid) => document.workers.some((worker) => worker.pid === pid)) ? null : 'a live worker is missing',
    );
    const started = Date.now();
    const load = startLoad(port, { concurrency: 4, ratePerSecond: rate, durationMs: seconds * 1000 });
    await sleep(WARM_UP_MS);

    const samples: { at: number; figures: Map<number, { heapUsed: number; rss: number }> }[] = [];
    const sample = async () => samples.push({ at: Math.round((Date.now() - started) / 1000), figures: await group.memory(pids) });
    await sample();
    while (Date.now() - started < seconds * 1000 - SAMPLE_EVERY_MS / 2) {
      await sleep(Math.min(SAMPLE_EVERY_MS, seconds * 1000 - (Date.now() - started)));
      await sample();
    }
    const served = await load.done;
    await sample();
    const read = reader.stop();

    console.log('\n  t(s) | heap MiB after GC, per worker          | RSS MiB, per worker');
    for (const { at, figures } of samples) {
      const heap = pids.map((pid) => mb(figures.get(pid)?.heapUsed ?? 0)).join(' ');
      const rss = pids.map((pid) => mb(figures.get(pid)?.rss ?? 0)).join(' ');
      console.log(`  ${String(at).padStart(4)} | ${heap} | ${rss}`);
    }
    const first = (samples.find((s) => s.at >= STEADY_FROM_S) ?? samples[0]).figures;
    const last = samples[samples.length - 1].figures;
    const growth = pids.map((pid) => ({
      pid,
      heap: (last.get(pid)?.heapUsed ?? 0) - (first.get(pid)?.heapUsed ?? 0),
      rss: (last.get(pid)?.rss ?? 0) - (first.get(pid)?.rss ?? 0),
    }));
    console.log(
      `\n  growth from ${STEADY_FROM_S} s to the end: ${growth.map((g) => `${g.pid}: heap ${mb(g.heap).trim()}, rss ${mb(g.rss).trim()}`).join('; ')} MiB`,
    );
    console.log(`  ${served.ok} responses (${Math.round(served.ok / seconds)}/s), ${served.errors} errors`);
    console.log(`  reader: ${read.reads} reads, ${read.invalid} invalid, ${read.problems.length} missing a live worker`);

    const settled = await waitForStatus(file, (d) => totalRequests(d) === served.ok, 10_000).catch(() => null);
    const failures: string[] = [];
    if (read.invalid > 0) failures.push(`${read.invalid} invalid reads: ${JSON.stringify(read.invalidSamples)}`);
    if (read.problems.length > 0) failures.push(read.problems[0]);
    if (settled === null) failures.push('the sum of requests never matched the responses');
    for (const g of growth) {
      if (g.heap > HEAP_LIMIT) failures.push(`heap of ${g.pid} grew ${mb(g.heap).trim()} MiB`);
      if (g.rss > RSS_LIMIT) failures.push(`rss of ${g.pid} grew ${mb(g.rss).trim()} MiB`);
    }
    if (group.ofType('exit').length > 0 || group.stderr !== '') failures.push(`a worker crashed: ${group.stderr}`);
    console.log(failures.length === 0 ? '\nsoak: ok' : `\nsoak: FAILED\n  ${failures.join('\n  ')}`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    await group.stop();
    temp.cleanup();
  }
}

process.exitCode = await main();
