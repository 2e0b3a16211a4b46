/**
 * A stats server's unix socket file, before it listens: a file nobody
 * listens on (a crashed run's) is removed; anything else at the path is left
 * alone: a live socket is shared (node:cluster) or gives EADDRINUSE (another
 * process of the app serves it, and a later retry takes it over), and a
 * regular file is an error, never deleted.
 */
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { StatsListenError } from './address.js';

// How long a probe of an existing socket file may take before it counts as alive.
const PROBE_TIMEOUT_MS = 1000;

/** Removes the socket file at `path` if nobody listens on it. Call under the socket's lock. */
export async function clearStaleSocket(path: string): Promise<void> {
  const info = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (info === null) return;
  if (!info.isSocket()) {
    throw new StatsListenError(path, 'EEXIST', 'a file that is not a socket is in the way (left untouched)');
  }
  if ((await probe(path)) === 'refused') {
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}

/** Whether someone listens on a unix socket file: `refused` only when nobody does. */
function probe(path: string): Promise<'live' | 'refused' | 'unknown'> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const settle = (result: 'live' | 'refused' | 'unknown') => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => settle('unknown'));
    socket.once('connect', () => settle('live'));
    socket.once('error', (error: NodeJS.ErrnoException) => settle(error.code === 'ECONNREFUSED' ? 'refused' : 'unknown'));
  });
}
