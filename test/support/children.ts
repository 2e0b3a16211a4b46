/**
 * The one owner of the child processes a test starts: the CLI and stats
 * fixtures (`spawnNode`), the cluster and standalone workers of
 * cluster-harness.ts (`adopt`), and the pids of grandchildren a cluster
 * primary forked (`watch`). `killAll()` runs in `after`/`afterEach`, pass
 * or fail, and returns once every one of them is gone, so no process
 * outlives its test and no temp dir is removed under a live writer.
 */
import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isProcessAlive } from '../../src/system/liveness.ts';
import { sleep } from './helpers.ts';

/** The repository root, where `node --import tsx` finds tsx and the fixtures' relative paths start. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// How long a child has to end on SIGTERM before SIGKILL, and a watched pid to vanish after SIGKILL.
const GRACE_MS = 3000;
const GONE_MS = 10_000;

export class Children {
  private readonly all = new Set<ChildProcess>();
  private readonly watched = new Set<number>();

  /** `node --import tsx <args>` in the repository root. */
  spawnNode(
    args: string[],
    options: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
  ): ChildProcessWithoutNullStreams {
    return this.adopt(
      spawn(process.execPath, ['--import', 'tsx', ...args], {
        cwd: ROOT,
        env: { ...process.env, ...options.env },
        uid: options.uid,
        gid: options.gid,
      }),
    );
  }

  /** Takes ownership of a child started elsewhere (fork(), spawn() with other stdio). */
  adopt<C extends ChildProcess>(child: C): C {
    this.all.add(child);
    child.on('exit', () => this.all.delete(child));
    return child;
  }

  /** A process that is not our child (a cluster primary's worker): SIGKILLed by {@link killAll}, which waits until it is gone. */
  watch(pid: number): void {
    this.watched.add(pid);
  }

  /**
   * Ends every process and waits for it to be gone. Children get stdin
   * closed and `signal`: SIGTERM (the default) lets the fixtures stop their
   * own workers and `serve` close its socket, with SIGKILL for any still
   * there after 3 s; SIGKILL ends them at once, as a crash would. Watched
   * pids are SIGKILLed in the same pass. Safe to call twice.
   */
  async killAll(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const exits = [...this.all].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), GRACE_MS);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.stdin?.end();
          child.kill(signal);
        }),
    );
    for (const pid of this.watched) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await Promise.all(exits);
    // A watched process is not ours to reap: killed, it may still be on a CPU for a moment. A zombie is
    // gone (an arrow, not `.some(isProcessAlive)`, which would pass each index as `checkZombie`).
    const deadline = Date.now() + GONE_MS;
    while ([...this.watched].some((pid) => isProcessAlive(pid)) && Date.now() < deadline) await sleep(10);
  }
}
