/**
 * Stats server addresses, in the syntax of uWSGI's `--stats`: anything with
 * a `:` is TCP (`host:port`, `:port`, `[v6]:port`), anything else is a unix
 * socket path. `unix://PATH` and `tcp://HOST:PORT` are accepted too, because
 * that is how the readers (Telegraf, Mackerel, uwsgi_exporter) spell them.
 */
import { isAbsolute, resolve } from 'node:path';

// Linux's sun_path is 108 bytes including the terminating NUL (macOS: 104).
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;

/** Where a stats server listens. */
export type StatsAddress =
  | {
      kind: 'unix';
      /** Absolute path of the socket file. */
      path: string;
    }
  | {
      kind: 'tcp';
      /** The host to bind: `0.0.0.0` for uWSGI's `:port`. IPv6 without brackets. */
      host: string;
      /** 0 picks a free port. */
      port: number;
    };

/** Thrown for an address that cannot be parsed; `name` is the option or argument it came from. */
export function parseStatsAddress(value: unknown, name = 'stats'): StatsAddress {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TypeError(`wsgi-status: option "${name}" must be a unix socket path or "host:port", got ${describeValue(value)}`);
  }
  if (value.includes('\0')) throw new TypeError(`wsgi-status: option "${name}" must not contain a NUL byte`);
  let text = value.trim();
  if (text.startsWith('unix://')) return unixAddress(text.slice('unix://'.length), name, value);
  if (text.startsWith('tcp://')) text = text.slice('tcp://'.length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new TypeError(
      `wsgi-status: option "${name}" takes a unix socket path or "host:port" (use statsHttp for HTTP), got ${JSON.stringify(value)}`,
    );
  }
  // uWSGI: a ':' anywhere means TCP.
  if (!text.includes(':')) return unixAddress(text, name, value);
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(text);
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2];
  } else {
    const colon = text.lastIndexOf(':');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) {
      throw new TypeError(
        `wsgi-status: option "${name}": write an IPv6 address as "[${host}]:${portText}", got ${JSON.stringify(value)}`,
      );
    }
  }
  if (!/^\d+$/.test(portText)) {
    throw new TypeError(`wsgi-status: option "${name}" must end with a numeric port, got ${JSON.stringify(value)}`);
  }
  const port = Number(portText);
  if (port > 65535) throw new RangeError(`wsgi-status: option "${name}" has a port above 65535: ${JSON.stringify(value)}`);
  // uWSGI binds INADDR_ANY for ":port".
  return { kind: 'tcp', host: host === '' ? '0.0.0.0' : host, port };
}

function unixAddress(path: string, name: string, value: string): StatsAddress {
  if (path === '') throw new TypeError(`wsgi-status: option "${name}" has an empty socket path: ${JSON.stringify(value)}`);
  if (path.endsWith('/')) throw new TypeError(`wsgi-status: option "${name}" must name a socket file, not a directory: ${path}`);
  const absolute = isAbsolute(path) ? path : resolve(path);
  // sockaddr_un holds 108 bytes with the NUL; libuv would silently bind a truncated name.
  if (Buffer.byteLength(absolute) > MAX_SOCKET_PATH) {
    throw new RangeError(
      `wsgi-status: option "${name}": a unix socket path is limited to ${MAX_SOCKET_PATH} bytes, ${absolute} has ${Buffer.byteLength(absolute)}`,
    );
  }
  return { kind: 'unix', path: absolute };
}

/** The address as a human reads it: the socket path, or `host:port` (`[v6]:port`). */
export function formatStatsAddress(address: StatsAddress): string {
  if (address.kind === 'unix') return address.path;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** A value as an error message shows it: strings quoted, objects by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** A listen failure, with the errno-style `code` and the address in the message. */
export class StatsListenError extends Error {
  readonly code: string;
  readonly address: string;

  constructor(address: string, code: string, reason: string, cause?: unknown) {
    super(`wsgi-status: cannot serve stats on ${address}: ${reason}`, { cause });
    this.name = 'StatsListenError';
    this.code = code;
    this.address = address;
  }
}
