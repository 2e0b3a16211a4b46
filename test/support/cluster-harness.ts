/**
 * Real processes for test/cluster.test.ts and test/soak/soak.ts: a node:cluster
 * primary (test/support/processes/cluster/primary.ts) or independent workers, a load
 * generator on loopback that tallies which pid answered, and a status-file
 * reader that never locks (as monitoring tools read it).
 *
 * Every process started here is owned by its group's {@link Children} and
 * SIGKILLed by `stop()`; the primary also exits when its stdin closes, so
 * nothing outlives the test process.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { UwsgiDocument } from '../../src/model/document.ts';
import { Children } from './children.ts';
import { sleep } from './helpers.ts';

const FIXTURES = fileURLToPath(new URL('./processes/cluster/', import.meta.url));
const TSX = ['--import', 'tsx'];

/** A message from a process of the group: the fixture's own, plus `fork` / `exit` from the primary. */
export interface ProcessEvent {
  type: string;
  pid: number;
  [key: string]: unknown;
}

/** Environment for the workers. */
export interface WorkerEnv {
  STATUS_FILE: string;
  INTERVAL?: string;
  SIGNAL_MODE?: 'default' | 'keep' | 'graceful';
  [key: string]: string | undefined;
}

function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  // The test may itself run under PM2 or as a cluster worker: the fixtures must not inherit that.
  if (!('NODE_APP_INSTANCE' in extra)) delete env.NODE_APP_INSTANCE;
  delete env.NODE_UNIQUE_ID;
  return env;
}

/** Processes started by one test, their messages, and their end. */
export abstract class ProcessGroup {
  readonly events: ProcessEvent[] = [];
  /** Every pid seen: the primary's and its workers'. */
  readonly pids = new Set<number>();
  stderr = '';
  private readonly emitter = new EventEmitter();
  private readonly children = new Children();

  protected record(event: ProcessEvent): void {
    if (typeof event.pid === 'number') {
      this.pids.add(event.pid);
      // A primary's workers are its children, not ours: watched, so stop() kills them and waits until they are gone.
      this.children.watch(event.pid);
    }
    this.events.push(event);
    this.emitter.emit('event', event);
  }

  protected adopt(child: ChildProcess): void {
    this.children.adopt(child);
    if (child.pid !== undefined) this.pids.add(child.pid);
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
  }

  /** The first event (already seen or to come) matching `predicate`; rejects after `timeoutMs`. */
  waitFor(predicate: (event: ProcessEvent) => boolean, timeoutMs = 20_000, what = 'event'): Promise<ProcessEvent> {
    const seen = this.events.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onEvent = (event: ProcessEvent) => {
        if (!predicate(event)) return;
        clearTimeout(timer);
        this.emitter.off('event', onEvent);
        resolve(event);
      };
      const timer = setTimeout(() => {
        this.emitter.off('event', onEvent);
        reject(new Error(`no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr}`));
      }, timeoutMs);
      this.emitter.on('event', onEvent);
    });
  }

  /** The next event to come (ignoring those already seen) matching `predicate`. */
  waitForNext(predicate: (event: ProcessEvent) => boolean, timeoutMs = 20_000, what = 'event'): Promise<ProcessEvent> {
    const from = this.events.length;
    return this.waitFor((event) => this.events.indexOf(event) >= from && predicate(event), timeoutMs, what);
  }

  /** Asks each worker for its heap after a full GC (workers need --expose-gc) and its RSS. */
  async memory(pids: number[]): Promise<Map<number, { heapUsed: number; rss: number }>> {
    const answers = pids.map((pid) =>
      this.waitForNext((event) => event.type === 'memory' && event.pid === pid, 10_000, 'memory'),
    );
    for (const pid of pids) this.send(pid, { cmd: 'memory' });
    const figures = new Map<number, { heapUsed: number; rss: number }>();
    for (const event of await Promise.all(answers)) {
      figures.set(event.pid, { heapUsed: event.heapUsed as number, rss: event.rss as number });
    }
    return figures;
  }

  /** Sends a message to one worker. */
  abstract send(pid: number, message: Record<string, unknown>): void;

  /** Waits for `count` workers to listen; resolves with their pids and the port. */
  async listening(count: number, timeoutMs = 30_000): Promise<{ pids: number[]; port: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const listening = this.events.filter((event) => event.type === 'listening');
      if (listening.length >= count) {
        return { pids: listening.map((event) => event.pid), port: listening[0].port as number };
      }
      await this.waitFor((event) => event.type === 'listening' && !listening.includes(event), deadline - Date.now(), 'listening');
    }
  }

  /** Events of one type. */
  ofType(type: string): ProcessEvent[] {
    return this.events.filter((event) => event.type === type);
  }

  /** Kills every process of the group with SIGKILL and waits for them to go. Safe to call twice. */
  stop(): Promise<void> {
    return this.children.killAll('SIGKILL');
  }
}

/** A node:cluster primary and its workers. */
export class ClusterGroup extends ProcessGroup {
  readonly primary: ChildProcess;

  constructor(workers: number, env: WorkerEnv, options: { respawn?: boolean; exposeGc?: boolean } = {}) {
    super();
    this.primary = spawn(process.execPath, [...TSX, `${FIXTURES}primary.ts`], {
      env: cleanEnv({
        ...env,
        WORKERS: String(workers),
        RESPAWN: options.respawn ? '1' : '0',
        EXPOSE_GC: options.exposeGc ? '1' : '0',
      }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.adopt(this.primary);
    let buffered = '';
    this.primary.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim() !== '') this.record(JSON.parse(line) as ProcessEvent);
        newline = buffered.indexOf('\n');
      }
    });
  }

  /** Sends `message` to the worker `pid` through the primary. */
  override send(pid: number, message: Record<string, unknown>): void {
    this.primary.stdin?.write(`${JSON.stringify({ pid, message })}\n`);
  }
}

/** Independent worker processes, as PM2 (fork mode) or a supervisor starts them. */
export class StandaloneGroup extends ProcessGroup {
  private readonly byPid = new Map<number, ChildProcess>();

  /** Starts one worker with `env` (e.g. `NODE_APP_INSTANCE`); resolves with its pid once it listens. */
  async start(env: WorkerEnv): Promise<number> {
    const child = fork(`${FIXTURES}worker.ts`, [], {
      execArgv: TSX,
      env: cleanEnv(env),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.adopt(child);
    const pid = child.pid as number;
    this.byPid.set(pid, child);
    child.on('message', (message: Record<string, unknown>) => this.record({ ...message, pid } as ProcessEvent));
    child.on('exit', (code, signal) => this.record({ type: 'exit', pid, code, signal }));
    await this.waitFor((event) => event.type === 'listening' && event.pid === pid, 30_000, `listening of ${pid}`);
    return pid;
  }

  override send(pid: number, message: Record<string, unknown>): void {
    this.byPid.get(pid)?.send(message);
  }
}

/** What a load run saw. */
export interface LoadResult {
  /** Responses received (status 200), by the pid that answered. */
  byPid: Map<number, number>;
  ok: number;
  errors: number;
  /** Milliseconds from sending each answered request to the end of its response. */
  latencies: number[];
}

/** A running load; `stop()` ends it and resolves with what it saw once every request in flight settled. */
export interface Load {
  readonly result: LoadResult;
  stop(): Promise<LoadResult>;
  /** Resolves when the load ended by itself (count or duration reached). */
  done: Promise<LoadResult>;
}

/**
 * Loopback load on `port`: `concurrency` keep-alive connections, bounded by
 * `maxRequests` and `durationMs`, optionally paced to `ratePerSecond`.
 */
export function startLoad(
  port: number,
  options: { concurrency?: number; maxRequests?: number; durationMs?: number; ratePerSecond?: number } = {},
): Load {
  const concurrency = options.concurrency ?? 8;
  const maxRequests = options.maxRequests ?? 1_000_000;
  const deadline = Date.now() + (options.durationMs ?? 60_000);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const result: LoadResult = { byPid: new Map(), ok: 0, errors: 0, latencies: [] };
  let started = 0;
  let stopped = false;
  const begin = Date.now();

  const one = () =>
    new Promise<void>((resolve) => {
      const sentAt = performance.now();
      const req = request({ host: '127.0.0.1', port, path: '/load?n=1', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          const pid = Number(body);
          if (res.statusCode === 200 && Number.isInteger(pid)) {
            result.ok++;
            result.latencies.push(performance.now() - sentAt);
            result.byPid.set(pid, (result.byPid.get(pid) ?? 0) + 1);
          } else {
            result.errors++;
          }
          resolve();
        });
        res.on('error', () => {
          result.errors++;
          resolve();
        });
      });
      // A request never answered must not hang the test: it fails, as a lost one.
      req.setTimeout(10_000, () => req.destroy());
      req.on('error', () => {
        // A worker killed mid-request resets its connections; not a response.
        result.errors++;
        resolve();
      });
      req.end();
    });

  const loop = async () => {
    while (!stopped && started < maxRequests && Date.now() < deadline) {
      const index = started++;
      if (options.ratePerSecond) {
        const due = begin + (index * 1000) / options.ratePerSecond;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      await one();
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, loop)).then(() => {
    agent.destroy();
    return result;
  });
  return {
    result,
    done,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

/** What a reader saw of the status file. */
export interface ReaderResult {
  reads: number;
  /** Reads that found the file missing (before the first write). */
  missing: number;
  /** Reads that were not valid JSON, or not a document with a `workers` array. */
  invalid: number;
  /** The first few of those texts. */
  invalidSamples: string[];
  /** Problems the `check` callback returned. */
  problems: string[];
}

/**
 * Reads `path` every `everyMs` without any lock, as uwsgitop or Mackerel
 * would, and runs `check` on every document; returns a stop function.
 */
export function startReader(
  path: string,
  everyMs: number,
  check: (document: UwsgiDocument) => string | null = () => null,
): { result: ReaderResult; stop: () => ReaderResult } {
  const result: ReaderResult = { reads: 0, missing: 0, invalid: 0, invalidSamples: [], problems: [] };
  const timer = setInterval(() => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      result.missing++;
      return;
    }
    result.reads++;
    let document: UwsgiDocument;
    try {
      document = JSON.parse(text) as UwsgiDocument;
      if (!Array.isArray(document.workers)) throw new Error('no workers array');
    } catch {
      result.invalid++;
      if (result.invalidSamples.length < 5) result.invalidSamples.push(text.slice(0, 200));
      return;
    }
    const problem = check(document);
    if (problem !== null && result.problems.length < 20) result.problems.push(problem);
  }, everyMs);
  return {
    result,
    stop: () => {
      clearInterval(timer);
      return result;
    },
  };
}

/** Sum of `requests` over the document's workers. */
export function totalRequests(document: UwsgiDocument): number {
  return document.workers.reduce((sum, worker) => sum + worker.requests, 0);
}
