/**
 * Starts bench/server.ts (one FRAMEWORK × VARIANT per process) the way every
 * benchmark here does: under a wrapper where one is wanted (`taskset` to pin
 * a core, `valgrind` to count instructions), with an IPC channel, and waits
 * for the port it reports.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';

/** Whether a process can be pinned to its own core: `taskset` exists and there are two cores or more. */
export function canPin(): boolean {
  return spawnSync('taskset', ['-c', '0', 'true']).status === 0 && cpus().length >= 2;
}

/** A started server process. */
export interface ForkedServer {
  child: ChildProcess;
  port: number;
  /** Settles with the exit code when the process exits. */
  exited: Promise<number | null>;
}

export async function forkServer(
  framework: string,
  variant: string,
  options: { execPath: string; execArgv: string[]; env: Record<string, string> },
): Promise<ForkedServer> {
  const child = fork(join(import.meta.dirname, 'server.ts'), [framework, variant], {
    execPath: options.execPath,
    execArgv: options.execArgv,
    env: { ...process.env, NODE_ENV: 'production', ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    void exited.then((code) => reject(new Error(`${framework}/${variant} exited with ${code} before listening`)));
    child.on('message', (message: { type: string; port?: number }) => {
      if (message.type === 'ready') resolve(message.port as number);
    });
  });
  return { child, port, exited };
}
