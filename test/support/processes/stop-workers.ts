/**
 * For a fixture's cluster primary: when the test is gone (stdin closes) or
 * sends SIGTERM, kill the workers and exit once they are gone, so none is
 * left for init to reap.
 */
import cluster from 'node:cluster';

export function stopWorkersWithTest(): void {
  const stop = () => {
    const workers = Object.values(cluster.workers ?? {});
    let left = workers.length;
    if (left === 0) process.exit(0);
    for (const worker of workers) {
      worker?.process.once('exit', () => {
        if (--left === 0) process.exit(0);
      });
      worker?.process.kill('SIGKILL');
    }
  };
  process.stdin.resume();
  process.stdin.on('end', stop);
  process.on('SIGTERM', stop);
}
