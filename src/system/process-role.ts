/**
 * Where this process stands among its siblings: the one module that knows
 * about node:cluster and PM2.
 */

/** What the status document needs to know about the process's supervisor. */
export interface ProcessRole {
  /** Who supervises the workers: the cluster primary or PM2 (our parent), else this process. */
  supervisorPid: number;
  /** The slot a process manager assigned: PM2's `NODE_APP_INSTANCE + 1`; `null` when none did. */
  preferredId: number | null;
  /** What started this process. */
  manager: 'pm2' | 'cluster' | 'none';
}

/**
 * Detects the role. node:cluster is imported lazily, on the first tick, so an
 * app that never forks does not load it (prom-client's cluster.js does the same).
 */
export async function detectProcessRole(env: NodeJS.ProcessEnv = process.env): Promise<ProcessRole> {
  const instance = env.NODE_APP_INSTANCE;
  if (instance !== undefined && /^\d+$/.test(instance)) {
    return { supervisorPid: process.ppid, preferredId: Number(instance) + 1, manager: 'pm2' };
  }
  // NODE_UNIQUE_ID is how node:cluster itself tells a worker; checking it first avoids the import.
  if (env.NODE_UNIQUE_ID !== undefined) {
    const { default: cluster } = await import('node:cluster');
    if (cluster.isWorker) return { supervisorPid: process.ppid, preferredId: null, manager: 'cluster' };
  }
  return { supervisorPid: process.pid, preferredId: null, manager: 'none' };
}
