/**
 * Where this process stands among its siblings: the one module that knows
 * about node:cluster and PM2.
 */
import type { DocumentIdentity } from '../model/document.js';
import { VERSION } from '../version.js';

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
  // node:cluster deletes NODE_UNIQUE_ID from a worker's env before user code runs; a worker always
  // has an IPC channel, so without one the import is skipped.
  if (env.NODE_UNIQUE_ID !== undefined || process.send !== undefined) {
    const { default: cluster } = await import('node:cluster');
    if (cluster.isWorker) return { supervisorPid: process.ppid, preferredId: null, manager: 'cluster' };
  }
  return { supervisorPid: process.pid, preferredId: null, manager: 'none' };
}

/** The document's top level for this process: the supervisor's pid (or ours, before the role is known), our uid, gid and cwd. */
export function processIdentity(role: ProcessRole | null): DocumentIdentity {
  return {
    version: `wsgi-status/${VERSION}`,
    pid: role?.supervisorPid ?? process.pid,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    cwd: process.cwd(),
  };
}
