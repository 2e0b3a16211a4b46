/**
 * One monitor per status file per process, shared by every adapter and by
 * `wsgi-status/register`.
 *
 * Two monitors writing the same file from one process would both claim the
 * entry of this pid and overwrite each other's counters at every tick, and an
 * app started with `--import wsgi-status/register` that also mounts the
 * Express middleware would count each request twice. So adapters take their
 * monitor from here: the first one for a path creates it, later ones for the
 * same path join it (its options stay; a request begun by two of them in a
 * row is counted once, see RequestPath.begin), and the monitor closes when
 * its last holder lets go. Different paths get different monitors: each file
 * counts every request it is given.
 *
 * The registry lives on `globalThis` under a `Symbol.for` key, so two copies
 * of the library in one process (an ESM and a CommonJS build, two installed
 * versions) share it too.
 */
import { WsgiStatusMonitor } from '../monitor.js';
import { OPTION_NAMES, resolveOptions, type WsgiStatusOptions } from '../options.js';

/** What the registry needs of a monitor (possibly from another copy of the library). */
interface SharedEntry {
  monitor: WsgiStatusMonitor;
  holders: number;
}

const REGISTRY = Symbol.for('wsgi-status.monitors');

function registry(): Map<string, SharedEntry> {
  const global = globalThis as typeof globalThis & { [REGISTRY]?: Map<string, SharedEntry> };
  global[REGISTRY] ??= new Map();
  return global[REGISTRY];
}

/** A hold on a shared monitor. */
export interface MonitorHold {
  readonly monitor: WsgiStatusMonitor;
  /** Options given by this holder that the shared monitor, created earlier with others, does not use. */
  readonly ignored: readonly string[];
  /**
   * Lets go. The last holder closes the monitor (its slot removed, resolved
   * after the last write); while others hold it, resolves at once.
   */
  release(): Promise<void>;
}

// Compared between holders; onError is each caller's own and never conflicts.
const COMPARED = OPTION_NAMES.filter((name): name is Exclude<typeof name, 'onError'> => name !== 'onError');

/**
 * The monitor of `path` in this process: the live one if there is one, else a
 * new one. Options are validated either way; those a joined monitor does not
 * use go to `onIgnored` (by default, one process warning).
 *
 * @throws {TypeError | RangeError} naming the option, when an option is invalid.
 */
export function acquireMonitor(
  path: string,
  options: WsgiStatusOptions = {},
  onIgnored: (hold: MonitorHold) => void = warnIgnored,
): MonitorHold {
  const resolved = resolveOptions(path, options);
  const monitors = registry();
  let entry = monitors.get(resolved.path);
  let ignored: string[] = [];
  if (entry !== undefined && !entry.monitor.closed) {
    entry.holders++;
    const running = entry.monitor.options;
    ignored = COMPARED.filter((key) => JSON.stringify(running[key]) !== JSON.stringify(resolved[key]));
  } else {
    entry = { monitor: new WsgiStatusMonitor(path, options), holders: 1 };
    monitors.set(resolved.path, entry);
  }
  const held = entry;
  let released: Promise<void> | null = null;
  const release = (): Promise<void> => {
    released ??= (() => {
      held.holders--;
      if (held.holders > 0) return Promise.resolve();
      if (monitors.get(held.monitor.path) === held) monitors.delete(held.monitor.path);
      return held.monitor.close();
    })();
    return released;
  };
  const hold = { monitor: held.monitor, ignored, release };
  if (ignored.length > 0) onIgnored(hold);
  return hold;
}

function warnIgnored(hold: MonitorHold): void {
  process.emitWarning(
    `wsgi-status: ${hold.monitor.path} is already monitored in this process; its options stay (${hold.ignored.join(', ')} not applied)`,
    { code: 'WSGI_STATUS' },
  );
}
