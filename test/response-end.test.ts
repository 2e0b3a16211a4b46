/**
 * The end-of-response helper every adapter relies on: 'close', exactly once
 * (keep-alive, pipelining, aborts, HTTP/2 cancels), against real servers and raw sockets.
 */
import assert from 'node:assert/strict';
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  connect as connectHttp2,
  createServer as createHttp2Server,
  type Http2ServerResponse,
  constants as http2Constants,
} from 'node:http2';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import express from 'express';
import { wsgiStatus } from '../src/index.ts';
import { onResponseEnd, type ResponseLike } from '../src/model/response-end.ts';
import { WsgiStatusMonitor } from '../src/monitor.ts';
import { closeServer, deferred, get, listen, sleep, tempDir, until, waitForStatus, workerOf } from './support/helpers.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** `watch(res)` arranges for `listener(res)` at the end of `res`, as the monitor does. */
function endWatcher<R extends ResponseLike>(listener: (res: R) => void): (res: R) => void {
  return (res) => onResponseEnd(res, () => listener(res));
}

/** What the hook reported, one entry per call. */
interface Call {
  url: string | undefined;
  writableEnded: boolean;
  statusCode: number;
}

/**
 * A server whose handler runs after `watch(res)`; `closed` counts responses
 * whose 'close' (always their last event) has fired.
 */
async function start(handler: Handler): Promise<{ server: Server; port: number; calls: Call[]; closed: () => number }> {
  const calls: Call[] = [];
  let closed = 0;
  const watch = endWatcher<ServerResponse>((res) => {
    calls.push({ url: res.req.url, writableEnded: res.writableEnded, statusCode: res.statusCode });
  });
  const server = createServer((req, res) => {
    watch(res);
    res.on('close', () => {
      closed++;
    });
    handler(req, res);
  });
  const port = await listen(server);
  return { server, port, calls, closed: () => closed };
}

/** Waits until `count` responses have emitted their last event, and a turn more for any straggler. */
async function allClosed(harness: { closed: () => number }, count: number): Promise<void> {
  await until(() => harness.closed() >= count, `${count} responses to close`);
  await new Promise((resolve) => setImmediate(resolve));
}

describe('onResponseEnd(res, listener)', () => {
  describe('when a response finishes', () => {
    it('should call the listener once, after the response ended', async () => {
      const harness = await start((_req, res) => res.end('hello'));
      try {
        const response = await get(harness.port, '/one');
        assert.equal(response.body, 'hello');
        await allClosed(harness, 1);
        assert.deepEqual(harness.calls, [{ url: '/one', writableEnded: true, statusCode: 200 }]);
      } finally {
        await closeServer(harness.server);
      }
    });
  });

  describe('when requests share a keep-alive connection', () => {
    it('should call it once for each response', async () => {
      const harness = await start((req, res) => res.end(req.url));
      let connections = 0;
      harness.server.on('connection', () => connections++);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (const url of ['/a', '/b', '/c']) assert.equal((await get(harness.port, url, { agent })).body, url);
        await allClosed(harness, 3);
        assert.equal(connections, 1);
        assert.deepEqual(
          harness.calls.map((call) => call.url),
          ['/a', '/b', '/c'],
        );
        // Closing the idle connection must not fire anything again.
        agent.destroy();
        await sleep(50);
        assert.equal(harness.calls.length, 3);
      } finally {
        agent.destroy();
        await closeServer(harness.server);
      }
    });
  });

  describe('when requests are pipelined', () => {
    it('should call it once for each response, in order', async () => {
      const harness = await start((req, res) => {
        // The first answers late, so the second waits behind it on the connection.
        if (req.url === '/first') setTimeout(() => res.end('first'), 50);
        else res.end('second');
      });
      try {
        const socket = connect(harness.port, '127.0.0.1');
        let received = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          received += chunk;
        });
        const ended = new Promise((resolve) => socket.on('end', resolve));
        socket.write(
          'GET /first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /second HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
        );
        await ended;
        socket.destroy();
        assert.match(received, /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nfirst[\s\S]*HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nsecond$/);
        await allClosed(harness, 2);
        assert.deepEqual(harness.calls, [
          { url: '/first', writableEnded: true, statusCode: 200 },
          { url: '/second', writableEnded: true, statusCode: 200 },
        ]);
      } finally {
        await closeServer(harness.server);
      }
    });
  });

  describe('when the client aborts before the response', () => {
    it('should call it once, unended, and not again when the handler answers late', async () => {
      const entered = deferred();
      const late = deferred();
      const harness = await start((_req, res) => {
        entered.resolve();
        void late.promise.then(() => res.end('too late'));
      });
      try {
        const socket = connect(harness.port, '127.0.0.1');
        socket.on('error', () => {});
        socket.write('GET /abort HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        await entered.promise;
        socket.destroy();
        await allClosed(harness, 1);
        assert.deepEqual(harness.calls, [{ url: '/abort', writableEnded: false, statusCode: 200 }]);
        late.resolve();
        await sleep(50);
        assert.equal(harness.calls.length, 1);
      } finally {
        await closeServer(harness.server);
      }
    });
  });

  describe('when the socket errors', () => {
    it('should call it once', async () => {
      const harness = await start((req, res) => {
        res.write('partial');
        req.socket.destroy(new Error('socket failure'));
      });
      // The http server answers a socket error itself; this keeps its default handling from printing.
      harness.server.on('clientError', () => {});
      try {
        await assert.rejects(get(harness.port, '/error'));
        await allClosed(harness, 1);
        assert.deepEqual(harness.calls, [{ url: '/error', writableEnded: false, statusCode: 200 }]);
      } finally {
        await closeServer(harness.server);
      }
    });
  });

  describe('when the response is destroyed half way', () => {
    it('should call it once', async () => {
      const harness = await start((_req, res) => {
        res.write('partial');
        setTimeout(() => res.destroy(), 10);
      });
      try {
        await assert.rejects(get(harness.port, '/destroyed'));
        await allClosed(harness, 1);
        assert.deepEqual(harness.calls, [{ url: '/destroyed', writableEnded: false, statusCode: 200 }]);
      } finally {
        await closeServer(harness.server);
      }
    });
  });

  describe('when the handler throws', () => {
    it('should call it once, when the error response ends', async () => {
      const harness = await start((_req, res) => {
        try {
          throw new Error('handler failed');
        } catch {
          // What a framework does with a throwing handler: answer 500.
          res.statusCode = 500;
          res.end('failed');
        }
      });
      try {
        assert.equal((await get(harness.port, '/throw')).status, 500);
        await allClosed(harness, 1);
        assert.deepEqual(harness.calls, [{ url: '/throw', writableEnded: true, statusCode: 500 }]);
      } finally {
        await closeServer(harness.server);
      }
    });
  });

  describe('when two hooks watch one response', () => {
    it('should call each once', async () => {
      const calls: string[] = [];
      const first = endWatcher<ServerResponse>(() => calls.push('first'));
      const second = endWatcher<ServerResponse>(() => calls.push('second'));
      const closed = deferred();
      const server = createServer((_req, res) => {
        first(res);
        second(res);
        res.on('close', () => closed.resolve());
        res.end('ok');
      });
      try {
        await get(await listen(server), '/');
        await closed.promise;
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(calls.sort(), ['first', 'second']);
      } finally {
        await closeServer(server);
      }
    });
  });

  describe('when called after the response ended', () => {
    /** A server whose handler hands out its response once it has closed: nobody listened before. */
    async function closedResponse(abort: boolean): Promise<{ res: ServerResponse; server: Server }> {
      const closed = deferred<ServerResponse>();
      const server = createServer((_req, res) => {
        res.once('close', () => closed.resolve(res));
        if (!abort) res.end('done');
      });
      const port = await listen(server);
      if (abort) {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => {});
        socket.write('GET /gone HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        server.once('request', () => setTimeout(() => socket.destroy(), 5));
      } else {
        await get(port, '/done');
      }
      return { res: await closed.promise, server };
    }

    for (const [what, abort] of [
      ['answered', false],
      ['whose client aborted', true],
    ] as const) {
      it(`should fire at once, once, for a response ${what}`, async () => {
        const { res, server } = await closedResponse(abort);
        try {
          let calls = 0;
          onResponseEnd(res, () => calls++);
          assert.equal(calls, 0, 'never inside the call itself');
          await Promise.resolve();
          assert.equal(calls, 1, 'on the next microtask, before any I/O');
          await sleep(20);
          assert.equal(calls, 1);
        } finally {
          await closeServer(server);
        }
      });
    }

    it("should fire once, on 'close', when called after end() but before 'close'", async () => {
      const calls: boolean[] = [];
      const closed = deferred();
      const server = createServer((_req, res) => {
        res.end('ended');
        onResponseEnd(res, () => calls.push(res.closed));
        res.on('close', () => setImmediate(closed.resolve));
      });
      try {
        await get(await listen(server), '/');
        await closed.promise;
        assert.deepEqual(calls, [true]);
      } finally {
        await closeServer(server);
      }
    });

    it('should fire at once for an HTTP/2 stream that was cancelled', async () => {
      const closed = deferred<Http2ServerResponse>();
      const server = createHttp2Server((_req, res) => {
        res.once('close', () => closed.resolve(res));
      });
      const port = await new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
      );
      const session = connectHttp2(`http://127.0.0.1:${port}`);
      session.on('error', () => {});
      try {
        const stream = session.request({ ':path': '/cancel' });
        stream.on('error', () => {});
        server.once('request', () => stream.close(http2Constants.NGHTTP2_CANCEL));
        const res = await closed.promise;
        let calls = 0;
        onResponseEnd(res, () => calls++);
        await Promise.resolve();
        assert.equal(calls, 1);
        await sleep(20);
        assert.equal(calls, 1);
      } finally {
        session.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });

  describe('when an HTTP/2 stream is cancelled', () => {
    it("should call it once, though 'finish' and 'close' both fire", async () => {
      const calls: boolean[] = [];
      const events: string[] = [];
      const watch = endWatcher<Http2ServerResponse>((res) => calls.push(res.writableEnded));
      const entered = deferred();
      const closed = deferred();
      const server = createHttp2Server((_req, res) => {
        watch(res);
        res.on('finish', () => events.push('finish'));
        res.on('close', () => {
          events.push('close');
          closed.resolve();
        });
        entered.resolve();
      });
      const port = await new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
      );
      const session = connectHttp2(`http://127.0.0.1:${port}`);
      session.on('error', () => {});
      try {
        const stream = session.request({ ':path': '/cancel' });
        stream.on('error', () => {});
        stream.end();
        await entered.promise;
        stream.close(http2Constants.NGHTTP2_CANCEL);
        await closed.promise;
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(events.sort(), ['close', 'finish']);
        assert.deepEqual(calls, [false]);
      } finally {
        session.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });
});

describe('WsgiStatusMonitor.begin(req, res)', () => {
  describe('when the response has already closed (issue 13, acceptance 3)', () => {
    it('should bring in_flight back to 0 at once and count the request once', async () => {
      const { dir, cleanup } = tempDir();
      const monitor = new WsgiStatusMonitor(join(dir, 'status.json'), { interval: 1000 });
      const closed = deferred<{ req: IncomingMessage; res: ServerResponse }>();
      const server = createServer((req, res) => {
        res.once('close', () => closed.resolve({ req, res }));
      });
      try {
        const port = await listen(server);
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => {});
        socket.write('GET /late HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        server.once('request', () => setTimeout(() => socket.destroy(), 5));
        const { req, res } = await closed.promise;
        monitor.begin(req, res);
        await Promise.resolve();
        const now = monitor.snapshot();
        assert.equal(now.in_flight, 0);
        assert.equal(now.status, 'idle');
        assert.equal(now.delta_requests, 1);
        await sleep(20);
        assert.equal(monitor.snapshot().delta_requests, 1, 'counted once');
        assert.equal(monitor.snapshot().in_flight, 0);
      } finally {
        await monitor.close();
        await closeServer(server);
        cleanup();
      }
    });
  });

  describe('when a client aborts during an async middleware before wsgiStatus in Express', () => {
    it('should show the worker idle within one interval', async () => {
      const { dir, cleanup } = tempDir();
      const file = join(dir, 'status.json');
      const interval = 100;
      const middleware = wsgiStatus(file, { interval });
      const entered = deferred();
      const app = express();
      app.use(async (_req, _res, next) => {
        entered.resolve();
        await sleep(60);
        next();
      });
      app.use(middleware);
      app.get('/', (_req, res) => {
        res.send('never sent');
      });
      const server = createServer(app);
      try {
        const port = await listen(server);
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => {});
        socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        await entered.promise;
        socket.destroy();
        await sleep(80); // the middleware has called wsgiStatus on the closed response
        const startedAt = Date.now();
        const document = await waitForStatus(file, (d) => {
          const me = workerOf(d);
          return me !== undefined && me.delta_requests === 1 && me.in_flight === 0 && me.last_update >= startedAt;
        });
        assert.equal(workerOf(document)?.status, 'idle');
        assert.ok(Date.now() - startedAt <= 2 * interval, `idle after ${Date.now() - startedAt} ms`);
        assert.equal(middleware.monitor.snapshot().in_flight, 0);
      } finally {
        await middleware.close();
        await closeServer(server);
        cleanup();
      }
    });
  });
});
