/**
 * The frameworks matrix's harness (issue 3): one factory per supported way
 * in (raw node:http `wrap` and `instrument`, http2's compatibility API,
 * Express 4 and 5, Koa 2 and 3, Fastify 4 and 5, Hapi), each building the
 * same small app with or without wsgi-status on 127.0.0.1:0; HTTP/1.1 and
 * HTTP/2 clients; and readers of the real status file. `useApp()` starts a
 * framework's pair of apps for one describe; counters are compared as
 * deltas, so the tests of one describe share one app and one file.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import {
  type ClientHttp2Session,
  connect as connectHttp2,
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  constants as http2Constants,
} from 'node:http2';
import type { Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before } from 'node:test';
import Hapi from '@hapi/hapi';
import express5 from 'express';
import express4 from 'express4';
import Fastify5 from 'fastify';
import Fastify4 from 'fastify4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import expressStatus from '../../src/adapters/express.ts';
import fastifyStatus from '../../src/adapters/fastify.ts';
import { instrument, wrap } from '../../src/adapters/http.ts';
import koaStatus from '../../src/adapters/koa.ts';
import type { UwsgiWorker } from '../../src/model/document.ts';
import type { WsgiStatusMonitor } from '../../src/monitor.ts';
import type { WsgiStatusOptions } from '../../src/options.ts';
import {
  type ClientResponse,
  closeServer,
  deferred,
  get,
  listen,
  readStatus,
  sleep,
  tempDir,
  waitForStatus,
  workerOf,
} from './helpers.ts';

export const INTERVAL = 50;
// Generous: the machine has two cores shared with other jobs.
export const SETTLE_MS = 10_000;

// ---------------------------------------------------------------------------
// What the test steers inside a running app

/** Lets a test hold handlers open and feed streamed bodies by hand. */
export class Control {
  /** Handlers that have entered {@link hold} so far. */
  entered = 0;
  /** Errors the handlers threw, in order. */
  readonly thrown: Error[] = [];
  private gate = deferred();
  private readonly waiters: Array<{ count: number; resolve: () => void }> = [];
  private readonly armed: PassThrough[] = [];

  /** Called by `/hold`: counts the handler in, then waits for {@link release}. */
  async hold(): Promise<void> {
    this.entered++;
    for (const waiter of this.waiters.filter((w) => w.count <= this.entered)) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    await this.gate.promise;
  }

  /** Resolves once `count` handlers in all have entered {@link hold}. */
  waitEntered(count: number): Promise<void> {
    if (this.entered >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Lets every held handler answer. */
  release(): void {
    this.gate.resolve();
    this.gate = deferred();
  }

  /** The body `/stream` sends: a stream the test feeds ({@link armStream}), else three fixed chunks. */
  stream(): Readable {
    return (
      this.armed.shift() ??
      Readable.from(
        ['one\n', 'two\n', 'three\n'].map((s) => Buffer.from(s)),
        { objectMode: false },
      )
    );
  }

  /** The next `/stream` request sends what the test writes to the returned stream. */
  armStream(): PassThrough {
    const stream = new PassThrough();
    // A framework may destroy the body stream when the client hangs up; later writes are the test's to ignore.
    stream.on('error', () => {});
    this.armed.push(stream);
    return stream;
  }

  /** A handler error. Its stack is fixed: Express prints it, and the middleware adds a frame to the real one. */
  boom(): Error {
    const error = new Error('boom');
    error.stack = 'Error: boom\n    at handler (test)';
    this.thrown.push(error);
    return error;
  }

  async rejectLater(): Promise<never> {
    await sleep(1);
    throw this.boom();
  }
}

// ---------------------------------------------------------------------------
// One factory per framework: the same routes, with or without wsgi-status
//
//   GET /ok      200 text/plain "hello world"
//   GET /throw   the handler throws synchronously
//   GET /reject  the handler's promise rejects
//   GET /fail    the handler answers 500 itself
//   GET /hold    waits for control.release(), then 200 "late"
//   GET /stream  200 text/plain, the body of control.stream()
//   otherwise    the framework's own 404
//
// Koa adds /throw-400 (ctx.throw(400)) and /respond-false (ctx.respond = false,
// answered on ctx.res once released); Fastify adds /throw-400, /items/:id,
// POST /echo (JSON) and /nested/inner/ok two encapsulated contexts down.

export interface Status {
  path: string;
  options: WsgiStatusOptions;
}

export interface Started {
  port: number;
  /** The listening server, to count its connections. */
  server: NetServer;
  /** The monitor, when started with wsgi-status. */
  monitor: WsgiStatusMonitor | null;
  /** Fastify's inject(): a request that never touches the server. */
  inject?: (url: string) => Promise<number>;
  close(): Promise<void>;
}

export interface Framework {
  name: string;
  /** Versions of what is under test, for the report. */
  version: string;
  http2?: boolean;
  start(control: Control, status: Status | null): Promise<Started>;
}

function versionOf(name: string): string {
  const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/** The app as a bare node:http (or http2 compatibility API) handler. */
function rawHandler(control: Control) {
  return (req: AnyRequest, res: AnyResponse): unknown => {
    switch (req.url) {
      case '/ok':
        res.setHeader('content-type', 'text/plain');
        res.end('hello world');
        return undefined;
      case '/throw':
        throw control.boom();
      case '/reject':
        return control.rejectLater();
      case '/fail':
        res.statusCode = 500;
        res.setHeader('content-type', 'text/plain');
        res.end('failed');
        return undefined;
      case '/hold':
        return control.hold().then(() => {
          res.setHeader('content-type', 'text/plain');
          res.end('late');
        });
      case '/stream':
        res.setHeader('content-type', 'text/plain');
        control.stream().pipe(res as NodeJS.WritableStream);
        return undefined;
      default:
        res.statusCode = 404;
        res.setHeader('content-type', 'text/plain');
        res.end('not found');
        return undefined;
    }
  };
}

/** What a bare node:http app must do itself, having no framework: answer a failed handler with a 500. */
function guard(handler: (req: AnyRequest, res: AnyResponse) => unknown) {
  return (req: AnyRequest, res: AnyResponse): void => {
    const fail = () => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain');
      res.end('internal error');
    };
    try {
      const result = handler(req, res);
      if (result instanceof Promise) result.then(undefined, fail);
    } catch {
      fail();
    }
  };
}

const httpWrap: Framework = {
  name: 'node:http wrap()',
  version: process.versions.node,
  async start(control, status) {
    const handler = status ? wrap(rawHandler(control), status.path, status.options) : rawHandler(control);
    const server = createServer(guard(handler));
    const port = await listen(server);
    return {
      port,
      server,
      monitor: status ? (handler as ReturnType<typeof wrap>).monitor : null,
      close: async () => {
        await closeServer(server);
        await (handler as Partial<ReturnType<typeof wrap>>).close?.();
      },
    };
  },
};

const httpInstrument: Framework = {
  name: 'node:http instrument()',
  version: process.versions.node,
  async start(control, status) {
    const server = createServer(guard(rawHandler(control)));
    const instrumented = status ? instrument(server, status.path, status.options) : null;
    const port = await listen(server);
    return {
      port,
      server,
      monitor: instrumented?.monitor ?? null,
      close: async () => {
        await closeServer(server);
        await instrumented?.close();
      },
    };
  },
};

const http2Instrument: Framework = {
  name: 'node:http2 compatibility API instrument()',
  version: process.versions.node,
  http2: true,
  async start(control, status) {
    const server = createHttp2Server(guard(rawHandler(control)));
    const instrumented = status ? instrument(server, status.path, status.options) : null;
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    const sessions = new Set<{ destroy(): void }>();
    server.on('session', (session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    return {
      port,
      server,
      monitor: instrumented?.monitor ?? null,
      close: async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const session of sessions) session.destroy();
        await closed;
        await instrumented?.close();
      },
    };
  },
};

/**
 * Express with wsgi-status as a middleware (`app.use`), or, `viaServer`, on
 * the http.Server the app runs in (`instrument`: no layer in Express's router,
 * the cheaper way on Express, see README's Performance).
 */
function expressFramework(
  name: string,
  module: string,
  createApp: typeof express5,
  handlesRejections: boolean,
  viaServer = false,
): Framework {
  return {
    name,
    version: versionOf(module),
    async start(control, status) {
      const app = createApp();
      // Express logs handler errors to stderr unless env is 'test'; it still renders its own error page.
      app.set('env', 'test');
      const middleware = status && !viaServer ? expressStatus(status.path, status.options) : null;
      if (middleware) app.use(middleware);
      app.get('/ok', (_req, res) => {
        res.type('text/plain').send('hello world');
      });
      app.get('/throw', () => {
        throw control.boom();
      });
      if (handlesRejections) {
        app.get('/reject', () => control.rejectLater());
      } else {
        // Express 4 ignores returned promises: a rejection reaches it only through next().
        app.get('/reject', (_req, _res, next) => {
          control.rejectLater().catch(next);
        });
      }
      app.get('/fail', (_req, res) => {
        res.status(500).type('text/plain').send('failed');
      });
      app.get('/hold', async (_req, res) => {
        await control.hold();
        res.type('text/plain').send('late');
      });
      app.get('/stream', (_req, res) => {
        res.type('text/plain');
        control.stream().pipe(res);
      });
      const server = createServer(app);
      const instrumented = status && viaServer ? instrument(server, status.path, status.options) : null;
      const port = await listen(server);
      const attached = middleware ?? instrumented;
      return {
        port,
        server,
        monitor: attached?.monitor ?? null,
        close: async () => {
          await closeServer(server);
          await attached?.close();
        },
      };
    },
  };
}

/** What a Koa app saw through `app.on('error')`. */
export const koaErrors = new WeakMap<Control, unknown[]>();

function koaFramework(name: string, module: string, Koa: typeof Koa3): Framework {
  return {
    name,
    version: versionOf(module),
    async start(control, status) {
      const app = new Koa();
      const errors: unknown[] = [];
      if (status) koaErrors.set(control, errors);
      // A listener replaces Koa's default logging of every error to stderr.
      app.on('error', (error: unknown) => errors.push(error));
      const middleware = status ? koaStatus(status.path, status.options) : null;
      if (middleware) app.use(middleware);
      // Not an async function: '/throw' must throw synchronously.
      app.use((ctx) => {
        switch (ctx.path) {
          case '/ok':
            ctx.type = 'text/plain';
            ctx.body = 'hello world';
            return undefined;
          case '/throw':
            throw control.boom();
          case '/reject':
            return control.rejectLater();
          case '/fail':
            ctx.status = 500;
            ctx.type = 'text/plain';
            ctx.body = 'failed';
            return undefined;
          case '/hold':
            return control.hold().then(() => {
              ctx.type = 'text/plain';
              ctx.body = 'late';
            });
          case '/stream':
            ctx.type = 'text/plain';
            ctx.body = control.stream();
            return undefined;
          case '/throw-400':
            ctx.throw(400, 'bad input');
            return undefined;
          case '/respond-false': {
            // The app answers on ctx.res itself, after the middleware chain has resolved.
            ctx.respond = false;
            const res = ctx.res;
            void control.hold().then(() => {
              res.writeHead(200, { 'content-type': 'text/plain' });
              res.end('raw');
            });
            return undefined;
          }
          default:
            return undefined;
        }
      });
      const server = createServer(app.callback());
      const port = await listen(server);
      return {
        port,
        server,
        monitor: middleware?.monitor ?? null,
        close: async () => {
          await closeServer(server);
          await middleware?.close();
        },
      };
    },
  };
}

function fastifyFramework(name: string, module: string, createApp: typeof Fastify5): Framework {
  return {
    name,
    version: versionOf(module),
    async start(control, status) {
      const app = createApp();
      if (status) await app.register(fastifyStatus, { path: status.path, ...status.options });
      app.get('/ok', async (_request, reply) => {
        reply.type('text/plain');
        return 'hello world';
      });
      app.get('/throw', () => {
        throw control.boom();
      });
      app.get('/reject', () => control.rejectLater());
      app.get('/fail', (_request, reply) => {
        reply.code(500).type('text/plain').send('failed');
      });
      app.get('/throw-400', () => {
        throw Object.assign(new Error('bad input'), { statusCode: 400 });
      });
      // Fastify answers a malformed parameter (/items/%zz) itself, before any hook.
      app.get('/items/:id', async (request) => (request.params as { id: string }).id);
      app.post('/echo', async (request) => request.body);
      app.get('/hold', async (_request, reply) => {
        await control.hold();
        reply.type('text/plain');
        return 'late';
      });
      app.get('/stream', (_request, reply) => {
        reply.type('text/plain').send(control.stream());
      });
      // A route two encapsulated contexts down (acceptance 7).
      app.register(
        async (child) => {
          child.register(
            async (grandchild) => {
              grandchild.get('/ok', async () => 'nested');
            },
            { prefix: '/inner' },
          );
        },
        { prefix: '/nested' },
      );
      await app.listen({ port: 0, host: '127.0.0.1' });
      return {
        port: (app.server.address() as { port: number }).port,
        server: app.server,
        monitor: status ? app.wsgiStatus : null,
        inject: async (url: string) => (await app.inject({ url })).statusCode,
        close: () => app.close(),
      };
    },
  };
}

const hapi: Framework = {
  name: 'Hapi (instrument(server.listener))',
  version: versionOf('@hapi/hapi'),
  async start(control, status) {
    // debug: false keeps Hapi from printing every 500 to the console.
    const server = Hapi.server({ port: 0, host: '127.0.0.1', debug: false });
    const instrumented = status ? instrument(server.listener, status.path, status.options) : null;
    server.route([
      { method: 'GET', path: '/ok', handler: (_request, h) => h.response('hello world').type('text/plain') },
      {
        method: 'GET',
        path: '/throw',
        handler: () => {
          throw control.boom();
        },
      },
      { method: 'GET', path: '/reject', handler: () => control.rejectLater() },
      { method: 'GET', path: '/fail', handler: (_request, h) => h.response('failed').code(500).type('text/plain') },
      {
        method: 'GET',
        path: '/hold',
        handler: async (_request, h) => {
          await control.hold();
          return h.response('late').type('text/plain');
        },
      },
      { method: 'GET', path: '/stream', handler: (_request, h) => h.response(control.stream()).type('text/plain') },
    ]);
    await server.start();
    return {
      port: server.info.port as number,
      server: server.listener,
      monitor: instrumented?.monitor ?? null,
      close: async () => {
        await server.stop({ timeout: 1000 });
        await instrumented?.close();
      },
    };
  },
};

export const FRAMEWORKS: Framework[] = [
  httpWrap,
  httpInstrument,
  http2Instrument,
  expressFramework('Express 4', 'express4', express4 as unknown as typeof express5, false),
  expressFramework('Express 5', 'express', express5, true),
  expressFramework('Express 5 (instrument(server))', 'express', express5, true, true),
  koaFramework('Koa 2', 'koa2', Koa2 as unknown as typeof Koa3),
  koaFramework('Koa 3', 'koa', Koa3),
  fastifyFramework('Fastify 4', 'fastify4', Fastify4 as unknown as typeof Fastify5),
  fastifyFramework('Fastify 5', 'fastify', Fastify5),
  hapi,
];

// ---------------------------------------------------------------------------
// Clients: HTTP/1.1 with a connection per request, or one HTTP/2 session

/** A request left open: what arrived so far, and a way to hang up. */
export interface OpenRequest {
  /** Resolves when the response's headers arrive. */
  readonly response: Promise<void>;
  /** The body received so far. */
  body(): string;
  /** Hangs up: destroys the HTTP/1.1 connection, or cancels the HTTP/2 stream (RST_STREAM CANCEL). */
  abort(): void;
}

export interface Client {
  /** HTTP/1.1 counts exactly the bytes each response took on the wire; HTTP/2 shares them on one session. */
  readonly exactBytes: boolean;
  get(path: string): Promise<ClientResponse>;
  /** `count` requests one after another on one connection. */
  sequence(path: string, count: number): Promise<ClientResponse[]>;
  open(path: string): OpenRequest;
  /** Bytes this client has read from the server so far (HTTP/2: over its session). */
  bytesRead(): number;
  close(): void;
}

/** One request through a keep-alive agent; `bytes` counted on the socket the agent lent it. */
function getKeepAlive(port: number, path: string, agent: Agent): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      // The agent takes the socket back before 'end': keep it now.
      const socket = res.socket;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, bytes: socket.bytesRead - start }));
      res.on('error', reject);
    });
    let start = 0;
    req.on('socket', (socket) => {
      start = socket.bytesRead;
    });
    req.on('error', reject);
    req.end();
  });
}

/** A POST with a body, on a connection of its own. */
export function post(port: number, path: string, body: string, contentType: string): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': contentType, 'content-length': Buffer.byteLength(body) };
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, bytes: 0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function http1Client(port: number): Client {
  let read = 0;
  const count = (response: ClientResponse) => {
    read += response.bytes;
    return response;
  };
  return {
    exactBytes: true,
    get: (path) => get(port, path).then(count),
    async sequence(path, n) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const responses: ClientResponse[] = [];
        for (let i = 0; i < n; i++) responses.push(count(await getKeepAlive(port, path, agent)));
        return responses;
      } finally {
        agent.destroy();
      }
    },
    open(path) {
      let body = '';
      const req = request({ host: '127.0.0.1', port, path, agent: false });
      // Hanging up surfaces on the client as ECONNRESET / "socket hang up".
      req.on('error', () => {});
      const response = new Promise<void>((resolve) => {
        req.on('response', (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('error', () => {});
          resolve();
        });
      });
      req.end();
      return { response, body: () => body, abort: () => req.destroy() };
    },
    bytesRead: () => read,
    close() {},
  };
}

export function http2Client(port: number): Client {
  const session: ClientHttp2Session = connectHttp2(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  const socketBytes = () => (session.socket as { bytesRead?: number } | undefined)?.bytesRead ?? 0;
  function open(path: string, onEnd?: (response: ClientResponse) => void, onError?: (error: Error) => void): OpenRequest {
    let body = '';
    let status = 0;
    let headers: ClientResponse['headers'] = {};
    const before = socketBytes();
    const stream = session.request({ ':path': path });
    stream.setEncoding('utf8');
    const response = new Promise<void>((resolve) => {
      stream.on('response', (received) => {
        status = Number(received[':status']);
        headers = Object.fromEntries(
          Object.entries(received).map(([key, value]) => [key, value === undefined ? value : String(value)]),
        );
        resolve();
      });
    });
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('end', () => onEnd?.({ status, headers, body, bytes: socketBytes() - before }));
    stream.on('error', (error) => onError?.(error));
    stream.end();
    return { response, body: () => body, abort: () => stream.close(http2Constants.NGHTTP2_CANCEL) };
  }
  const get = (path: string) => new Promise<ClientResponse>((resolve, reject) => open(path, resolve, reject));
  return {
    exactBytes: false,
    get,
    async sequence(path, n) {
      const responses: ClientResponse[] = [];
      for (let i = 0; i < n; i++) responses.push(await get(path));
      return responses;
    },
    open: (path) => open(path),
    bytesRead: socketBytes,
    close: () => session.close(),
  };
}

// ---------------------------------------------------------------------------
// Reading the status file

export interface Running {
  path: string;
  monitor: WsgiStatusMonitor;
}

/** This process's worker entry, from a write made after everything the caller did so far. */
export async function current(app: Running): Promise<UwsgiWorker> {
  // The first tick() may join a write whose snapshot predates the caller's last step; the second cannot.
  await app.monitor.tick();
  await app.monitor.tick();
  const worker = workerOf(readStatus(app.path));
  assert.ok(worker, 'this process has a slot in the status file');
  return worker;
}

/** Polls the file until the worker is idle with at least `requests` counted, then reads a fresh write. */
export async function settled(app: Running, requests: number): Promise<UwsgiWorker> {
  await waitForStatus(
    app.path,
    (document) => {
      const worker = workerOf(document);
      return worker !== undefined && worker.requests >= requests && worker.in_flight === 0;
    },
    SETTLE_MS,
  );
  return current(app);
}

/** What acceptance 8 compares: everything but the headers that carry the time. */
export function comparable(response: ClientResponse) {
  const headers = { ...response.headers };
  delete headers.date;
  delete headers['keep-alive'];
  return { status: response.status, headers, body: response.body };
}

/**
 * Waits until the worker is idle with `requests` more counted than `before`,
 * then asserts it counted exactly that many, `exceptions` more when given
 * (0: none), and nothing in flight. Returns the worker as last written.
 */
export async function assertCounted(
  app: Running,
  before: UwsgiWorker,
  expected: { requests: number; exceptions?: number },
): Promise<UwsgiWorker> {
  const after = await settled(app, before.requests + expected.requests);
  assert.equal(after.requests - before.requests, expected.requests, 'requests counted');
  if (expected.exceptions !== undefined)
    assert.equal(after.exceptions - before.exceptions, expected.exceptions, 'exceptions counted');
  assertIdle(after);
  return after;
}

/**
 * After a client hung up: the request is counted once and the worker idle;
 * `late()` (the handler writing to the gone response) changes neither.
 */
export async function assertCountedOnceAfterAbort(app: Running, before: UwsgiWorker, late: () => void): Promise<void> {
  const after = await assertCounted(app, before, { requests: 1 });
  late();
  await sleep(100);
  const later = await current(app);
  assert.equal(later.requests, after.requests);
  assertIdle(later);
}

export function assertIdle(worker: UwsgiWorker): void {
  assert.equal(worker.status, 'idle');
  assert.equal(worker.in_flight, 0);
  assert.equal(worker.cores[0].in_request, 0);
}

// ---------------------------------------------------------------------------
// One framework's pair of apps for a describe

/** A framework's instrumented app and its plain twin, started by {@link useApp}. */
export interface AppUnderTest {
  readonly framework: Framework;
  /** The status file. */
  readonly path: string;
  /** Steers the instrumented app's handlers. */
  readonly control: Control;
  /** What the monitor's onError received. */
  readonly errors: Error[];
  readonly app: Started;
  readonly plain: Started;
  readonly running: Running;
  readonly client: Client;
  /** Sends `path` to both apps; asserts the responses match; returns the instrumented app's. */
  sameAsPlain(path: string): Promise<ClientResponse>;
  /** Asserts `tx` grew by what the client read of `responses` (HTTP/2: within the session's bytes). */
  assertTx(before: UwsgiWorker, after: UwsgiWorker, responses: ClientResponse[], readBefore: number): void;
  /** Closes the instrumented app now; the `after` hook then leaves it. */
  close(): Promise<void>;
}

/**
 * Starts `framework` twice in the calling describe's `before` (with
 * wsgi-status writing a fresh status file every {@link INTERVAL} ms, and
 * without), and stops both, their clients and the file in its `after`, pass
 * or fail.
 */
export function useApp(framework: Framework): AppUnderTest {
  const { dir, cleanup } = tempDir();
  const path = join(dir, 'status.json');
  const control = new Control();
  const plainControl = new Control();
  const errors: Error[] = [];
  let app: Started | undefined;
  let plain: Started | undefined;
  let client: Client | undefined;
  let plainClient: Client | undefined;
  let closed = false;
  const started = <T>(value: T | undefined, what: string): T => {
    assert.ok(value, `${what} is started in before()`);
    return value;
  };

  const connect = (port: number) => (framework.http2 ? http2Client(port) : http1Client(port));

  before(async () => {
    app = await framework.start(control, { path, options: { interval: INTERVAL, onError: (error) => errors.push(error) } });
    plain = await framework.start(plainControl, null);
    assert.ok(app.monitor, 'the factory returned the monitor');
    client = connect(app.port);
    plainClient = connect(plain.port);
    await waitForStatus(path, (document) => workerOf(document) !== undefined, SETTLE_MS);
  });

  after(async () => {
    control.release();
    plainControl.release();
    client?.close();
    plainClient?.close();
    if (!closed) await app?.close();
    await plain?.close();
    cleanup();
  });

  return {
    framework,
    path,
    control,
    errors,
    get app() {
      return started(app, 'the app');
    },
    get plain() {
      return started(plain, 'the plain app');
    },
    get running() {
      return { path, monitor: started(started(app, 'the app').monitor ?? undefined, 'the monitor') };
    },
    get client() {
      return started(client, 'the client');
    },
    async sameAsPlain(route) {
      const [response, expected] = await Promise.all([
        started(client, 'the client').get(route),
        started(plainClient, 'the plain client').get(route),
      ]);
      assert.deepEqual(comparable(response), comparable(expected), `${route}: response differs with wsgi-status`);
      return response;
    },
    assertTx(before, after, responses, readBefore) {
      const tx = after.tx - before.tx;
      const reader = started(client, 'the client');
      if (reader.exactBytes) {
        assert.equal(
          tx,
          responses.reduce((sum, r) => sum + r.bytes, 0),
          'tx is what the client read',
        );
      } else {
        // HTTP/2 frames of one session are shared, and this app's only session is the client's:
        // tx covers at least the bodies, and all of it is no more than the session read.
        assert.ok(tx >= responses.reduce((sum, r) => sum + Buffer.byteLength(r.body), 0), `tx ${tx} covers the bodies`);
        assert.ok(after.tx <= reader.bytesRead(), `tx ${after.tx} is no more than the session read`);
        assert.ok(reader.bytesRead() > readBefore);
      }
    },
    async close() {
      closed = true;
      await app?.close();
    },
  };
}
