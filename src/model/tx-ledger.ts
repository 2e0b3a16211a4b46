/**
 * `tx`, counted per connection instead of per request.
 *
 * Reading a socket's `bytesWritten` costs a copy of its write buffer, and
 * attributing bytes to each response needed a read and a store on the socket
 * for every request: together about 40% of what the monitor added to one
 * (callgrind, `npm run bench:instructions`). Here the
 * request path only checks that its connection is known (one property load);
 * each connection is read once when it closes, and the tick reads the ones
 * still open. The total is the same for responses (headers and bodies): every
 * byte a connection wrote after its first request began.
 */

/** What the ledger reads of a connection: `net.Socket`, `tls.TLSSocket`, or an HTTP/2 session's socket proxy. */
export interface ConnectionLike {
  readonly bytesWritten?: number;
  readonly destroyed?: boolean;
  once(event: 'close', listener: () => void): unknown;
}

interface OpenConnection {
  /** `bytesWritten` when the connection was first seen. */
  base: number;
  /** `bytesWritten` when last read (an HTTP/2 socket proxy cannot be read once its session is gone). */
  last: number;
}

/** Reads a connection's byte count; undefined when it cannot be read (an unbound HTTP/2 socket proxy throws). */
function bytesOf(connection: ConnectionLike): number | undefined {
  try {
    const written = connection.bytesWritten;
    return typeof written === 'number' ? written : undefined;
  } catch {
    return undefined;
  }
}

/** Takes a new reading of a connection's count (a count never goes back; an unreadable one keeps the last). */
function advance(entry: OpenConnection, written: number | undefined): void {
  if (written !== undefined && written > entry.last) entry.last = written;
}

/** What {@link TxLedger} reads as a connection's mark when there is none to read. */
const UNREADABLE = Symbol('unreadable');

/** Bytes written on the connections a process's requests came in on. */
export class TxLedger {
  /** Marks a connection already watched, on the connection itself (a Set lookup per request costs more). */
  private readonly seen = Symbol('wsgi-status:tx');
  /** Bytes written by connections that have closed. */
  private closed = 0;
  private readonly open = new Map<ConnectionLike, OpenConnection>();

  /** Starts watching `connection` unless it is watched already (or cannot be read). Never throws. */
  watch(connection: ConnectionLike | null | undefined): void {
    if (this.markOf(connection) === undefined) this.add(connection as ConnectionLike);
  }

  /**
   * Whether `connection` is watched already: one property read, the request
   * path's whole cost per request once its connection is known. Never throws.
   */
  watches(connection: ConnectionLike | null | undefined): boolean {
    const mark = this.markOf(connection);
    return mark !== undefined && mark !== UNREADABLE;
  }

  /** Bytes written so far: closed connections, plus what the open ones wrote since first seen. */
  total(): number {
    let total = this.closed;
    for (const [connection, entry] of this.open) {
      advance(entry, bytesOf(connection));
      total += entry.last - entry.base;
    }
    return total;
  }

  /** Connections being watched. */
  get size(): number {
    return this.open.size;
  }

  /** The connection's mark: undefined when never watched, UNREADABLE for none (or a dead HTTP/2 socket proxy). */
  private markOf(connection: ConnectionLike | null | undefined): unknown {
    if (connection == null) return UNREADABLE;
    try {
      return (connection as unknown as Record<symbol, unknown>)[this.seen];
    } catch {
      return UNREADABLE; // the socket proxy of an HTTP/2 session already gone throws on every property
    }
  }

  private add(connection: ConnectionLike): void {
    try {
      (connection as unknown as Record<symbol, unknown>)[this.seen] = true;
      const base = bytesOf(connection) ?? 0;
      if (connection.destroyed === true) return; // its 'close' may have gone already: nothing more to count
      const entry: OpenConnection = { base, last: base };
      this.open.set(connection, entry);
      const ledger = this;
      // `this` is the connection that closed: for an HTTP/2 socket proxy, the
      // real socket, still readable when the proxy no longer is.
      connection.once('close', function onConnectionClose(this: ConnectionLike) {
        advance(entry, bytesOf(this) ?? bytesOf(connection));
        ledger.closed += entry.last - entry.base;
        ledger.open.delete(connection);
      });
    } catch {
      // A connection that cannot be marked or listened to is not counted; the request still is.
      this.open.delete(connection);
    }
  }
}
