/**
 * `wsgi-status/register`'s configuration: the environment, and the default
 * status file. Read when the first HTTP server listens, not when the preload
 * runs: PM2's cluster mode puts an app's `env` (and `pm_exec_path`) into
 * `process.env` only after preloads have run.
 */
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { resolveOptions, resolveStatusPath, type WsgiStatusOptions } from '../options.js';

export const PREFIX = 'wsgi-status/register:';

/** What the environment asks for. */
export interface RegisterConfig {
  /** The status file; `null` when the register is off (a bad `WSGI_STATUS_FILE`). */
  path: string | null;
  /** Whether `path` is the default one (`WSGI_STATUS_FILE` unset). */
  isDefaultPath: boolean;
  /** Options taken from the environment. */
  options: WsgiStatusOptions;
  /** One line per bad variable. */
  problems: string[];
}

/** 32-bit FNV-1a, hex: enough to tell apps apart in a file name, and needs no node:crypto. */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/**
 * The status file when `WSGI_STATUS_FILE` is unset: one per user and app, on
 * tmpfs where there is one, in a directory private to the user.
 * `/dev/shm/wsgi-status-<uid>/<script>-<hash of cwd and script>.json`; the
 * script is PM2's `pm_exec_path`, else `process.argv[1]`, so a cluster's or a
 * PM2 app's workers, which share both, share one file.
 */
export function defaultStatusPath(env: NodeJS.ProcessEnv = process.env): string {
  let base = tmpdir();
  try {
    if (lstatSync('/dev/shm').isDirectory()) base = '/dev/shm';
  } catch {
    // No /dev/shm (macOS, Windows): the temporary directory.
  }
  const script = env.pm_exec_path ?? process.argv[1] ?? '';
  const cwd = process.cwd();
  const name = (basename(script, extname(script)) || basename(cwd) || 'app').replace(/[^\w.-]/g, '_').slice(0, 40);
  return join(base, `wsgi-status-${process.getuid?.() ?? 0}`, `${name}-${shortHash(`${cwd}\0${script}`)}.json`);
}

/** The error's message without the library's own prefix. */
export function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/^wsgi-status: /, '');
}

/** Reads `WSGI_STATUS_FILE`, `WSGI_STATUS_STATS`, `WSGI_STATUS_STATS_HTTP` and `WSGI_STATUS_INTERVAL`. Never throws. */
export function readRegisterConfig(env: NodeJS.ProcessEnv = process.env): RegisterConfig {
  const problems: string[] = [];
  const options: WsgiStatusOptions = {};
  const file = env.WSGI_STATUS_FILE;
  const isDefaultPath = file === undefined || file === '';
  let path: string | null = null;
  try {
    path = isDefaultPath ? defaultStatusPath(env) : resolveStatusPath(file, 'WSGI_STATUS_FILE');
  } catch (error) {
    problems.push(
      `${PREFIX} WSGI_STATUS_FILE=${JSON.stringify(file)} is not usable (${reason(error)}); requests are not counted`,
    );
  }
  // Each value is checked by the same validation as the adapters' options.
  const take = <K extends keyof WsgiStatusOptions>(name: string, key: K, value: WsgiStatusOptions[K], fallback: string) => {
    try {
      resolveOptions(path ?? '/', { [key]: value });
      options[key] = value;
    } catch (error) {
      problems.push(`${PREFIX} ignoring ${name}=${JSON.stringify(env[name])} (${reason(error)}); ${fallback}`);
    }
  };
  const interval = env.WSGI_STATUS_INTERVAL;
  if (interval !== undefined && interval !== '') {
    take('WSGI_STATUS_INTERVAL', 'interval', /^\d+$/.test(interval.trim()) ? Number(interval) : Number.NaN, 'using 1000 ms');
  }
  const stats = env.WSGI_STATUS_STATS;
  if (stats !== undefined && stats !== '') take('WSGI_STATUS_STATS', 'stats', stats, 'no stats server');
  const statsHttp = env.WSGI_STATUS_STATS_HTTP;
  if (statsHttp !== undefined && statsHttp !== '') {
    const flag = /^(1|true|yes)$/i.test(statsHttp) ? true : /^(0|false|no)$/i.test(statsHttp) ? false : undefined;
    if (flag === undefined) {
      problems.push(`${PREFIX} ignoring WSGI_STATUS_STATS_HTTP=${JSON.stringify(statsHttp)} (must be 1 or 0); using 0`);
    } else options.statsHttp = flag;
  }
  return { path, isDefaultPath, options, problems };
}
