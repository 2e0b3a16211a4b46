/**
 * Where the CLI reads a document from: a status file, or a stats server
 * (ours or a real uWSGI) at `unix://PATH`, a bare socket path,
 * `tcp://host:port`, `host:port` or `http://host:port`, the forms the
 * readers in DESIGN.md accept.
 */

import { lstat, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import type { UwsgiDocument } from '../model/document.js';
import { createStatusFileProvider, type DocumentIdentity, StatusFileError } from '../server/providers.js';
import { VERSION } from '../version.js';
import { CliError } from './common.js';

/** A place to read the document from. */
export type StatsSource =
  | { kind: 'file'; path: string }
  | { kind: 'unix'; path: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'http'; url: string };

const HOST_PORT = /^(\[[^\]]+\]|[^/:[\]]*):(\d{1,5})$/;

/**
 * Decides what `text` names. An existing path is a file or a socket by what
 * it is on disk; otherwise `host:port` is TCP and anything else a (missing) file.
 */
export async function resolveSource(text: string): Promise<StatsSource> {
  if (text.startsWith('unix://')) return { kind: 'unix', path: text.slice('unix://'.length) };
  if (text.startsWith('http://')) return { kind: 'http', url: text };
  if (text.startsWith('tcp://')) return tcpSource(text.slice('tcp://'.length), text);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text))
    throw new CliError(`unsupported address ${JSON.stringify(text)}: use a file, unix://, tcp:// or http://`);
  const info = await stat(text).catch(() => null);
  if (info?.isSocket()) return { kind: 'unix', path: text };
  if (info === null && HOST_PORT.test(text)) return tcpSource(text, text);
  return { kind: 'file', path: resolve(text) };
}

function tcpSource(hostPort: string, original: string): StatsSource {
  const match = HOST_PORT.exec(hostPort);
  if (!match || Number(match[2]) > 65535) throw new CliError(`invalid address ${JSON.stringify(original)}: expected host:port`);
  const host = match[1].replace(/^\[|\]$/g, '') || '127.0.0.1';
  return { kind: 'tcp', host, port: Number(match[2]) };
}

/** The source as the user would write it. */
export function describeSource(source: StatsSource): string {
  switch (source.kind) {
    case 'file':
      return source.path;
    case 'unix':
      return `unix://${source.path}`;
    case 'tcp':
      return source.host.includes(':') ? `tcp://[${source.host}]:${source.port}` : `tcp://${source.host}:${source.port}`;
    case 'http':
      return source.url;
  }
}

/**
 * Reads the document once. A status file is read the way the `serve` sidecar
 * serves it (gone workers dropped, listen queues measured now); a server's
 * answer is taken as it comes. Throws a {@link CliError} with one clear line.
 * `warn` hears of a file whose entries were partly left out (not uWSGI workers).
 */
export async function loadDocument(
  source: StatsSource,
  timeoutMs = 5000,
  warn?: (message: string) => void,
): Promise<UwsgiDocument> {
  if (source.kind === 'file') return loadFile(source.path, warn);
  let text: string;
  try {
    text = source.kind === 'http' ? await readHttp(source.url, timeoutMs) : await readSocket(source, timeoutMs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read stats from ${describeSource(source)}: ${code ? reasonFor(code) : (error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new CliError(`${describeSource(source)} did not answer with valid JSON (${text.length} bytes received)`);
  }
  if (data === null || typeof data !== 'object' || !Array.isArray((data as { workers?: unknown }).workers)) {
    throw new CliError(`${describeSource(source)} did not answer with a uWSGI stats document (no "workers" list)`);
  }
  return data as UwsgiDocument;
}

function reasonFor(code: string): string {
  const reasons: Record<string, string> = {
    ENOENT: 'no such socket (ENOENT)',
    ECONNREFUSED: 'connection refused (ECONNREFUSED)',
    EACCES: 'permission denied (EACCES)',
    ETIMEDOUT: 'timed out (ETIMEDOUT)',
    ENOTFOUND: 'host not found (ENOTFOUND)',
    ECONNRESET: 'connection reset (ECONNRESET)',
  };
  return reasons[code] ?? code;
}

/** This process's identity, for a file that holds no top level yet. */
function ownIdentity(): DocumentIdentity {
  return {
    version: `wsgi-status/${VERSION}`,
    pid: process.pid,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    cwd: process.cwd(),
  };
}

async function loadFile(path: string, warn?: (message: string) => void): Promise<UwsgiDocument> {
  // lstat: the status file is never a link (the writers replace one), and a reader must not follow one either.
  const info = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new CliError(`${path}: no such file or socket`);
    throw new CliError(`cannot read ${path}: ${error.code ?? error.message}`);
  });
  if (info.isDirectory()) throw new CliError(`cannot read ${path}: it is a directory (EISDIR)`);
  let fatal: Error | null = null;
  const document = await readStatusFile(path, (error) => {
    if (error instanceof StatusFileError && !error.unusable) warn?.(error.message);
    else fatal ??= error;
  });
  if (fatal !== null) {
    const failure = fatal as NodeJS.ErrnoException;
    throw new CliError(
      failure instanceof StatusFileError ? failure.message : `cannot read ${path}: ${failure.code ?? failure.message}`,
    );
  }
  return document;
}

/**
 * The status file as the sidecar serves it: always a valid document. What
 * was wrong with the file goes to `onFileError`; without it, a file that
 * cannot be read or is not JSON rejects.
 */
export function readStatusFile(path: string, onFileError?: (error: Error) => void): Promise<UwsgiDocument> {
  return createStatusFileProvider({ path, identity: (fromFile) => fromFile ?? ownIdentity(), onFileError })();
}

function readSocket(source: { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number }, timeoutMs: number) {
  return new Promise<string>((resolvePromise, reject) => {
    const socket = source.kind === 'unix' ? connect({ path: source.path }) : connect({ host: source.host, port: source.port });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => {
      socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => {
      socket.destroy();
      resolvePromise(Buffer.concat(chunks).toString('utf8'));
    });
    socket.once('error', reject);
  });
}

function readHttp(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { agent: false, headers: { 'user-agent': `wsgi-status/${VERSION}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('end', () => {
        if (res.statusCode !== 200) reject(new Error(`HTTP status ${res.statusCode}`));
        else resolvePromise(Buffer.concat(chunks).toString('utf8'));
      });
      res.once('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.once('error', reject);
    req.end();
  });
}
