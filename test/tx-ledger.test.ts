/**
 * TxLedger: tx counted per connection, on real sockets (node:http over
 * 127.0.0.1 and a real HTTP/2 session), compared with what the clients read.
 */
import assert from 'node:assert/strict';
import { Agent, createServer, type IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import { type AddressInfo, connect } from 'node:net';
import { describe, it } from 'node:test';
import { type ConnectionLike, TxLedger } from '../src/model/tx-ledger.ts';
import { closeServer, get, listen, until } from './support/helpers.ts';

/** Waits (up to 0.5 s) until the ledger holds no connection: a server socket's 'close' follows the client's a little later. */
function allClosed(ledger: TxLedger): Promise<void> {
  return until(() => ledger.size === 0, 'every watched connection to close', 500);
}

/** A server whose every request is watched by `ledger`, answering `size` bytes of body. */
async function ledgerServer(ledger: TxLedger) {
  const server = createServer((req: IncomingMessage, res) => {
    ledger.watch(req.socket);
    const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size') ?? 11);
    res.end('x'.repeat(size));
  });
  const port = await listen(server);
  return { server, port };
}

describe('TxLedger', () => {
  it('should count every byte the clients read, on open keep-alive connections and on closed ones', async (t) => {
    const ledger = new TxLedger();
    const { server, port } = await ledgerServer(ledger);
    t.after(() => closeServer(server));

    // Open: three responses on one keep-alive connection, read while it stays open.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let read = 0;
    for (const size of [11, 5000, 0]) read += (await get(port, `/?size=${size}`, { agent })).bytes;
    assert.equal(ledger.size, 1, 'one connection watched');
    assert.equal(ledger.total(), read, 'open connection: what the client read so far');

    // Closed: its bytes stay counted once it is gone, and it is no longer held.
    agent.destroy();
    await allClosed(ledger);
    assert.equal(ledger.size, 0, 'a closed connection is dropped');
    assert.equal(ledger.total(), read);

    // Connections of their own (no keep-alive): each closes after its response.
    for (const size of [1, 70_000]) read += (await get(port, `/?size=${size}`, { agent: false })).bytes;
    await allClosed(ledger);
    assert.equal(ledger.size, 0);
    assert.equal(ledger.total(), read, 'closed connections: everything the clients read');
  });

  it('should watch a connection once however many requests it carries', async (t) => {
    const ledger = new TxLedger();
    const { server, port } = await ledgerServer(ledger);
    t.after(() => closeServer(server));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    let read = 0;
    for (let i = 0; i < 20; i++) read += (await get(port, '/', { agent })).bytes;
    assert.equal(ledger.size, 1);
    assert.equal(ledger.total(), read, 'not counted twice');
  });

  it('should not hold a connection that closed before it was first seen', async (t) => {
    const ledger = new TxLedger();
    const watched = new Promise<void>((resolve) => {
      const server = createServer((req) => {
        // The client goes away before the request is answered; the request is watched only after that.
        req.socket.once('close', () => {
          ledger.watch(req.socket);
          resolve();
        });
      });
      t.after(() => closeServer(server));
      void listen(server).then((port) => {
        const client = connect(port, '127.0.0.1', () => client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        server.once('request', () => client.destroy());
      });
    });
    await watched;
    assert.equal(ledger.size, 0, 'not held: its close has gone already');
    assert.equal(ledger.total(), 0);
  });

  it("should count an HTTP/2 session's bytes through its socket proxy, and keep them once the session is gone", async (t) => {
    const ledger = new TxLedger();
    const server = http2.createServer((_req, res) => {
      ledger.watch(res.stream.session?.socket as unknown as ConnectionLike);
      res.end('hello over h2');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const stream = client.request({ ':path': '/' });
        stream.on('error', reject);
        stream.resume();
        stream.on('end', resolve);
      });
    }
    assert.equal(ledger.size, 1, 'one session, one connection');
    const open = ledger.total();
    assert.ok(open >= 3 * 'hello over h2'.length, `tx ${open} covers the bodies`);
    const readByClient = (client.socket as unknown as { bytesRead: number }).bytesRead;
    assert.ok(open <= readByClient, `tx ${open} is no more than the client read (${readByClient})`);

    await new Promise<void>((resolve) => client.close(() => resolve()));
    await allClosed(ledger);
    assert.equal(ledger.size, 0, 'the closed session is dropped');
    assert.ok(ledger.total() >= open, 'what it wrote stays counted');
  });
});
