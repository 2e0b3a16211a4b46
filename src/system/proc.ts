/**
 * Linux probes through /proc. Every function returns a neutral value (0, an
 * empty list) where /proc is missing or unreadable, and never throws: these
 * figures are nice to have, never worth an error.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** One listening TCP socket as the kernel sees it. */
export interface ListenQueue {
  /** Canonical address: dotted IPv4, or eight 4-digit hex groups for IPv6. */
  address: string;
  port: number;
  /** Connections waiting to be accepted (`rx_queue` of the LISTEN row). */
  queue: number;
}

const TCP_LISTEN = '0A';

// /proc files report size 0, so readFileSync() allocates a 64 KiB buffer
// for each read of them; once per tick (and once per other worker) that was
// the largest CPU cost of a tick. One small buffer, reused, serves them all.
const PROC_BUFFER_BYTES = 4096;
let procBuffer: Buffer | undefined;

/**
 * The text of a small /proc file (at most 4 KiB, as /proc/<pid>/stat and
 * /proc/self/status are), or `null` when it cannot be read. Never throws.
 */
export function readProcFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    procBuffer ??= Buffer.allocUnsafe(PROC_BUFFER_BYTES);
    const read = readSync(fd, procBuffer, 0, PROC_BUFFER_BYTES, null);
    // A file that fills the buffer may go on: read it whole the slow way.
    if (read === PROC_BUFFER_BYTES) return readFileSync(path, 'latin1');
    return procBuffer.toString('latin1', 0, read);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** The virtual memory size of this process in bytes, from /proc/self/status; 0 where unknown. */
export function readVirtualMemorySize(): number {
  const match = /^VmSize:\s+(\d+) kB$/m.exec(readProcFile('/proc/self/status') ?? '');
  return match ? Number(match[1]) * 1024 : 0;
}

/** This process's memory in bytes. */
export interface MemorySize {
  /** Resident set size. */
  rss: number;
  /** Virtual memory size; 0 where unknown. */
  vsz: number;
}

// Learnt once by comparing statm's page count with status's kB (Node does not expose the page size).
let pageSize = 0;

/**
 * Resident and virtual size from one read of /proc/self/statm (counted in
 * pages). It is the cheapest source of both: process.memoryUsage() reads
 * /proc/self/stat and /proc/self/status is long to generate. Where /proc is
 * missing: rss from Node, vsz 0.
 */
export function readMemorySize(): MemorySize {
  const fields = readProcFile('/proc/self/statm')?.split(' ');
  const sizePages = Number(fields?.[0]);
  const residentPages = Number(fields?.[1]);
  if (pageSize === 0 && sizePages > 0) {
    const vsz = readVirtualMemorySize();
    // The two reads are a moment apart: round to the nearest power of two.
    if (vsz > 0) pageSize = 2 ** Math.round(Math.log2(vsz / sizePages));
  }
  if (pageSize === 0 || !(sizePages > 0) || !(residentPages > 0)) return { rss: process.memoryUsage.rss(), vsz: 0 };
  return { rss: residentPages * pageSize, vsz: sizePages * pageSize };
}

/** Parses the LISTEN rows of /proc/net/tcp or /proc/net/tcp6. Pure. */
export function parseProcNetTcp(text: string, family: 4 | 6): ListenQueue[] {
  const rows: ListenQueue[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue ...
    if (fields.length < 5 || fields[3] !== TCP_LISTEN) continue;
    const [addressHex, portHex] = fields[1].split(':');
    // For a LISTEN socket rx_queue is the accept queue's length (sk_ack_backlog);
    // the backlog itself is not in this file (only sock_diag has it).
    const rxHex = fields[4].split(':')[1];
    if (!addressHex || !portHex || !rxHex) continue;
    rows.push({
      address: family === 4 ? decodeIpv4(addressHex) : decodeIpv6(addressHex),
      port: Number.parseInt(portHex, 16),
      queue: Number.parseInt(rxHex, 16),
    });
  }
  return rows;
}

/** The kernel prints each 32-bit word in host (little-endian) byte order. */
function wordBytes(hex: string): number[] {
  const bytes: number[] = [];
  for (let i = 6; i >= 0; i -= 2) bytes.push(Number.parseInt(hex.slice(i, i + 2), 16));
  return bytes;
}

function decodeIpv4(hex: string): string {
  return wordBytes(hex).join('.');
}

function decodeIpv6(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) bytes.push(...wordBytes(hex.slice(w * 8, w * 8 + 8)));
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16).padStart(4, '0'));
  return groups.join(':');
}

/**
 * The canonical form of an address as Node reports it (`server.address()`),
 * matching {@link ListenQueue.address}; `null` for something that is not an IP.
 */
export function canonicalAddress(address: string): string | null {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(address)) return address;
  if (!address.includes(':')) return null;
  let text = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return null;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  return groups.map((g) => g.toLowerCase().padStart(4, '0')).join(':');
}

/**
 * The accept queue of the socket listening on `address:port`: an exact
 * address match first, else a wildcard (`0.0.0.0` / `::`) on that port.
 */
export function findListenQueue(rows: readonly ListenQueue[], address: string, port: number): ListenQueue | undefined {
  const wanted = canonicalAddress(address);
  const onPort = rows.filter((row) => row.port === port);
  return (
    onPort.find((row) => row.address === wanted) ??
    onPort.find((row) => row.address === '0.0.0.0' || /^[0:]+$/.test(row.address)) ??
    (onPort.length === 1 ? onPort[0] : undefined)
  );
}

/** An address as the status document names it: `host:port`, `[v6]:port`, or a unix socket path (port 0). */
export interface NamedAddress {
  name: string;
  port: number;
}

/**
 * Measures the accept queue of each named TCP address now, keyed by name.
 * Unix sockets and addresses not found are left out.
 *
 * Generating all of /proc/net/tcp walks the kernel's whole connection hash
 * table, but it lists LISTEN sockets first and the kernel only generates as
 * much as a read() asks for. So the file is read in small chunks and reading
 * stops as soon as every wanted port is found. Even then the kernel looks for
 * the row after the last one it returns, through the established table when
 * the LISTEN rows are done: about 1 ms of CPU on a 24 GiB machine while there
 * are few connections, 0.07 ms with 50 or more (the tick samples it: see
 * monitor/listen-queues.ts).
 */
export function measureListenQueues(addresses: readonly NamedAddress[]): Map<string, { queue: number }> {
  const queues = new Map<string, { queue: number }>();
  const wanted = addresses
    .filter((address) => address.port > 0)
    .map((address) => ({ ...address, host: hostOf(address.name) }))
    .map((address) => ({ ...address, canonical: canonicalAddress(address.host) }))
    .filter((address) => address.canonical !== null);
  for (const family of [4, 6] as const) {
    const mine = wanted.filter((address) => address.canonical!.includes('.') === (family === 4));
    if (mine.length === 0) continue;
    const rows = readListenRowsUntil(family, (seen) =>
      mine.every((address) => findListenQueue(seen, address.host, address.port)),
    );
    for (const address of mine) {
      const row = findListenQueue(rows, address.host, address.port);
      if (row) queues.set(address.name, { queue: row.queue });
    }
  }
  return queues;
}

function hostOf(name: string): string {
  return name.startsWith('[') ? name.slice(1, name.lastIndexOf(']')) : name.slice(0, name.lastIndexOf(':'));
}

const CHUNK_BYTES = 512;

/** Reads LISTEN rows of /proc/net/tcp{,6} in small chunks until `enough(rows)`, a non-LISTEN row, or the end. */
function readListenRowsUntil(family: 4 | 6, enough: (rows: ListenQueue[]) => boolean): ListenQueue[] {
  const rows: ListenQueue[] = [];
  let fd: number;
  try {
    fd = openSync(family === 4 ? '/proc/net/tcp' : '/proc/net/tcp6', 'r');
  } catch {
    return rows;
  }
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let pending = '';
    let header = true;
    for (;;) {
      const read = readSync(fd, buffer, 0, CHUNK_BYTES, null);
      if (read === 0) return rows;
      const lines = (pending + buffer.toString('latin1', 0, read)).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (header) {
          header = false;
          continue;
        }
        const parsed = parseProcNetTcp(`\n${line}`, family);
        if (parsed.length === 0) return rows; // past the LISTEN section
        rows.push(parsed[0]);
      }
      if (enough(rows)) return rows;
    }
  } catch {
    return rows;
  } finally {
    closeSync(fd);
  }
}

/**
 * The backlog a Node server gets by default: 511, capped by the kernel at
 * net.core.somaxconn. Node does not keep the backlog a server was given.
 */
export function defaultBacklog(): number {
  if (backlog === undefined) {
    const somaxconn = Number(readProcFile('/proc/sys/net/core/somaxconn')?.trim());
    backlog = somaxconn > 0 ? Math.min(511, somaxconn) : 511;
  }
  return backlog;
}
let backlog: number | undefined;

/** The document's name for a listening address as `server.address()` reports it. */
export function nameAddress(address: string | { address: string; family: string | number; port: number }): NamedAddress {
  if (typeof address === 'string') return { name: address, port: 0 };
  const v6 = address.family === 'IPv6' || address.family === 6;
  return { name: v6 ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`, port: address.port };
}
