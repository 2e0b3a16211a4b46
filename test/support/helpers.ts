/**
 * Shared test helpers: real servers on 127.0.0.1:0, real requests, the real
 * status file. No mocks.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { type Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UwsgiDocument, UwsgiWorker } from '../../src/model/document.ts';

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'wsgi-status-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true, maxRetries: 5 }) };
}

/** Starts `server` on 127.0.0.1:0 and resolves with its port. */
export function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes a server, dropping idle keep-alive connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/** What a client saw of one response. */
export interface ClientResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Bytes received: status line, headers and body as they came off the socket. */
  bytes: number;
}

/** One request to 127.0.0.1:port, counting the raw bytes received on the socket for it. */
export function get(port: number, path = '/', options: { method?: string; agent?: Agent | false } = {}): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    let before = 0;
    const req = request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', agent: options.agent ?? false },
      (res) => {
        // A keep-alive agent takes the socket back before 'end'.
        const socket = res.socket;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            bytes: socket.bytesRead - before,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('socket', (socket) => {
      before = socket.bytesRead;
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads and parses the status file; throws if it is not valid JSON. */
export function readStatus(path: string): UwsgiDocument {
  return JSON.parse(readFileSync(path, 'utf8')) as UwsgiDocument;
}

/** Reads the status file, or `null` while it does not exist yet. */
export function tryReadStatus(path: string): UwsgiDocument | null {
  try {
    return readStatus(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Polls the status file every 10 ms until `predicate(document)` holds, or
 * rejects after `timeoutMs` naming `what`, with the last document seen. A
 * missing file is "not yet"; a file that is not JSON fails at once (writers
 * rename whole files into place, so a reader never sees a partial one).
 */
export async function waitForStatus(
  path: string,
  predicate: (document: UwsgiDocument) => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<UwsgiDocument> {
  const deadline = Date.now() + timeoutMs;
  let last: UwsgiDocument | null = null;
  for (;;) {
    last = tryReadStatus(path);
    if (last !== null && predicate(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`status ${what} not met within ${timeoutMs} ms; last document: ${JSON.stringify(last)}`);
    await sleep(10);
  }
}

/** The worker entry of `pid` (this process by default). */
export function workerOf(document: UwsgiDocument, pid = process.pid): UwsgiWorker | undefined {
  return document.workers.find((worker) => worker.pid === pid);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Keeps this process's event loop busy for `ms`: a synchronous handler or computation. */
export function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/**
 * Blocks this process's event loop, checking `condition` every 20 ms, until
 * it holds or `timeoutMs` has passed: a handler stuck while another process
 * acts (fault injection inside the lock).
 */
export function blockUntil(condition: () => boolean, timeoutMs = 30_000): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
}

/** Polls `condition` every 5 ms; rejects naming `what` once `timeoutMs` has passed. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A promise with its resolve function, to hold a handler open. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A value's JSON type, telling integers from floats (what Go's decoders care about). */
export function jsonType(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'float';
  return typeof value;
}

/** Asserts every number anywhere in `value` is a non-negative safe integer, and nothing is null. */
export function assertAllUint(value: unknown, path = '$'): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${path} = ${value} is not a non-negative integer`);
  } else if (value === null) {
    throw new Error(`${path} is null`);
  } else if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) assertAllUint(item, `${path}[${i}]`);
  } else if (typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) assertAllUint(item, `${path}.${key}`);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
