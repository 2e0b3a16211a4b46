/**
 * Whether a process is alive: the one place that asks the kernel, used by the
 * slot writer's pruning and by every reader that leaves dead workers out.
 */
import { readProcFile } from './proc.js';

/**
 * `process.kill(pid, 0)`: ESRCH means gone; EPERM means alive under another
 * user. A zombie (dead, not yet reaped by a busy or careless parent) still
 * answers, so on Linux its state in /proc decides (skipped when
 * `checkZombie` is false: the /proc read costs tens of microseconds).
 */
export function isProcessAlive(pid: number, checkZombie = true): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !(checkZombie && isZombie(pid));
}

/** `/proc/<pid>/stat` is `pid (comm) S ...`; comm may hold spaces and parentheses, so read after the last one. */
function isZombie(pid: number): boolean {
  const stat = readProcFile(`/proc/${pid}/stat`);
  return stat !== null && stat.charAt(stat.lastIndexOf(')') + 2) === 'Z';
}
