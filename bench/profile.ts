/**
 * A second, noise-proof view of the cost: the share of a wsgi-status
 * server's busy CPU that a V8 CPU profile attributes to this library's own
 * code (inclusive: the listeners it registers, the tick, everything it calls).
 * Wall-clock ratios on a small shared machine swing by ±20% between two
 * identical processes; a profile's proportions do not.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forkServer } from './fork-server.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

// This repository's src/, as a file URL prefix (a dependency may have a src/ too).
const OWN_SOURCES = new URL('../src/', import.meta.url).href;

/** Share (0–1) of non-idle samples whose nearest own-or-app frame is in this repository's src/. */
export function ownShare(profile: Profile): number {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node] as const));
  let busy = 0;
  let ours = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node || ['(idle)', '(program)'].includes(node.callFrame.functionName)) continue;
    busy += dt;
    // The nearest frame that is ours or the app's decides: Node internals our
    // code calls (res.on, emit) count as ours, but the framework code that runs
    // inside our middleware's next() / done() is the app's.
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const url = byId.get(id)?.callFrame.url ?? '';
      if (url.includes(OWN_SOURCES)) {
        ours += dt;
        break;
      }
      if (url.includes('/node_modules/') || url.includes('/bench/')) break;
    }
  }
  return busy > 0 ? ours / busy : 0;
}

/** Runs the wsgi-status variant of `framework` under `load` with the profiler on; returns the share. */
export async function profileShare(
  framework: string,
  load: (port: number, seconds: number) => Promise<unknown>,
  execArgv: (extra: string[]) => { execPath: string; execArgv: string[] },
): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-status-profile-'));
  try {
    const { execPath, execArgv: args } = execArgv(['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const { child, port, exited } = await forkServer(framework, 'wsgi-status', {
      execPath,
      execArgv: args,
      env: { BENCH_DIR: dir },
    });
    await load(port, 3); // warm-up, as in the timed runs
    await load(port, 5);
    child.disconnect(); // the server exits normally, so V8 writes the profile
    await exited;
    // The main thread's profile is the largest (the loader thread has its own).
    const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
    const main = files.sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
    return ownShare(JSON.parse(readFileSync(join(dir, main), 'utf8')) as Profile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
