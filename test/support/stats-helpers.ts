/**
 * Helpers for the stats server and CLI tests (issue 5): raw socket reads,
 * child processes' output and CLI runs (the processes themselves are owned
 * by children.ts), and a decoder as strict as the Go readers (Telegraf,
 * uwsgi_exporter, Mackerel) are.
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Children } from './children.ts';

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Where to connect: a unix socket path or a TCP address. */
export type Target = { path: string } | { host: string; port: number };

/** What one client saw. */
export interface RawRead {
  data: Buffer;
  /** From connect() to the end of the answer (EOF), ms. */
  ms: number;
}

/** Connects, optionally sends `send`, reads until the server closes. Rejects after `timeoutMs`. */
export function readRaw(target: Target, options: { send?: string; timeoutMs?: number } = {}): Promise<RawRead> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(target);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no EOF from ${JSON.stringify(target)} within ${options.timeoutMs ?? 5000} ms`));
    }, options.timeoutMs ?? 5000);
    socket.on('connect', () => {
      if (options.send !== undefined) socket.write(options.send);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), ms: performance.now() - started });
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Collects a child's stdout lines and waits for one that matches. */
export class LineReader {
  readonly lines: string[] = [];
  private buffer = '';
  private readonly waiters: Array<() => void> = [];

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.buffer += chunk;
      const parts = this.buffer.split('\n');
      this.buffer = parts.pop() ?? '';
      this.lines.push(...parts);
      for (const wake of this.waiters.splice(0)) wake();
    });
    child.on('exit', () => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** The first line (from the start) that `match` accepts. */
  async waitFor(match: (line: string) => boolean, timeoutMs = 10_000, what = 'a matching line'): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(match);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(
          `process exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}; stdout: ${this.lines.join(' | ')}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; stdout: ${this.lines.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for a JSON line whose `type` is `type`. */
  async waitForJson<T = Record<string, unknown>>(type: string, timeoutMs = 10_000): Promise<T> {
    const line = await this.waitFor(
      (l) => l.startsWith('{') && (JSON.parse(l) as { type?: string }).type === type,
      timeoutMs,
      `a {"type":"${type}"} line`,
    );
    return JSON.parse(line) as T;
  }
}

/** What a CLI run printed. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `wsgi-status <args>` from source to its exit. */
export function runCli(
  children: Children,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = children.spawnNode([CLI, ...args], { env: options.env });
    child.stdin.end();
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wsgi-status ${args.join(' ')} did not exit within ${options.timeoutMs ?? 15_000} ms`));
    }, options.timeoutMs ?? 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      // Give the pipes a moment to drain after exit.
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

/**
 * Runs the command line in this process (no start-up cost): what the program
 * does minus the process itself. The spawned runs in cli.test.ts cover that.
 */
export async function runInProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const { main } = await import('../../src/cli/run.ts');
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    get stdin(): NodeJS.ReadStream {
      throw new Error('no stdin in process');
    },
    env: { ...process.env, MACKEREL_AGENT_PLUGIN_META: undefined, ...env },
  });
  return { code, stdout, stderr };
}

/** An error run: exactly one line on stderr, no stack trace, a non-zero status. */
export function assertOneLineError(run: CliRun, pattern: RegExp): void {
  assert.notEqual(run.code, 0, `expected a failure, got 0; stdout: ${run.stdout}`);
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, `expected one stderr line, got: ${run.stderr}`);
  assert.match(lines[0], /^wsgi-status: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
}

// ---------------------------------------------------------------------------
// A decoder as strict as Go's encoding/json into typed structs (Telegraf's
// `int` fields, uwsgi_exporter's, mackerel-plugin-uwsgi-vassal's `uint64`),
// plus uwsgitop's required keys: every number in the text is a plain
// non-negative integer token (no '-', '.', exponent), every uWSGI key is
// present with its type, and workers are never null.
// ---------------------------------------------------------------------------

type Shape = 'uint' | 'string' | 'object' | { [key: string]: Shape } | [Shape];

const SOCKET: Shape = { name: 'string', proto: 'string', queue: 'uint', max_queue: 'uint', shared: 'uint', can_offload: 'uint' };
const APP: Shape = {
  id: 'uint',
  modifier1: 'uint',
  mountpoint: 'string',
  startup_time: 'uint',
  requests: 'uint',
  exceptions: 'uint',
  chdir: 'string',
};
const CORE: Shape = {
  id: 'uint',
  requests: 'uint',
  static_requests: 'uint',
  routed_requests: 'uint',
  offloaded_requests: 'uint',
  write_errors: 'uint',
  read_errors: 'uint',
  in_request: 'uint',
  vars: ['string'],
  req_info: 'object',
};
const WORKER: Shape = {
  id: 'uint',
  pid: 'uint',
  accepting: 'uint',
  requests: 'uint',
  delta_requests: 'uint',
  exceptions: 'uint',
  harakiri_count: 'uint',
  signals: 'uint',
  signal_queue: 'uint',
  status: 'string',
  rss: 'uint',
  vsz: 'uint',
  running_time: 'uint',
  last_spawn: 'uint',
  respawn_count: 'uint',
  tx: 'uint',
  avg_rt: 'uint',
  apps: [APP],
  cores: [CORE],
};
const DOCUMENT: Shape = {
  version: 'string',
  listen_queue: 'uint',
  listen_queue_errors: 'uint',
  signal_queue: 'uint',
  load: 'uint',
  pid: 'uint',
  uid: 'uint',
  gid: 'uint',
  cwd: 'string',
  locks: ['object'],
  sockets: [SOCKET],
  workers: [WORKER],
};

function check(value: unknown, shape: Shape, path: string): void {
  if (shape === 'uint') {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new TypeError(`${path}: cannot decode ${JSON.stringify(value)} into uint64`);
    }
  } else if (shape === 'string') {
    if (typeof value !== 'string') throw new TypeError(`${path}: cannot decode ${JSON.stringify(value)} into string`);
  } else if (shape === 'object') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${path}: not an object`);
  } else if (Array.isArray(shape)) {
    if (!Array.isArray(value)) throw new TypeError(`${path}: cannot decode ${JSON.stringify(value)} into a list`);
    for (const [i, item] of value.entries()) check(item, shape[0], `${path}[${i}]`);
  } else {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${path}: not an object`);
    for (const [key, inner] of Object.entries(shape)) {
      if (!(key in value)) throw new TypeError(`${path}.${key}: missing`);
      check((value as Record<string, unknown>)[key], inner, `${path}.${key}`);
    }
  }
}

/** Every number token of a JSON text, as written. */
function numberTokens(text: string): string[] {
  const tokens: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const match = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (match) {
        tokens.push(match[0]);
        i += match[0].length - 1;
      }
    }
  }
  return tokens;
}

/**
 * Decodes a served document the way the strictest reader would, or throws
 * naming the first offending field. `ours` adds this library's own promises
 * (worker ids >= 1, since uwsgi_exporter drops id 0).
 */
export function strictDecode(text: string, options: { ours?: boolean } = {}): Record<string, unknown> {
  for (const token of numberTokens(text)) {
    if (!/^\d+$/.test(token) || !Number.isSafeInteger(Number(token))) {
      throw new TypeError(`number ${token} is not a non-negative integer`);
    }
  }
  const data = JSON.parse(text) as unknown;
  check(data, DOCUMENT, '$');
  const document = data as { workers: Array<{ id: number }> };
  if (options.ours) for (const worker of document.workers) if (worker.id < 1) throw new TypeError(`worker id ${worker.id} < 1`);
  return data as Record<string, unknown>;
}
