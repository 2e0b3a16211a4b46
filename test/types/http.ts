/** A consumer of `wsgi-status/http`, as its types see it. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { type Instrumentation, instrument, type WrappedHandler, wrap } from '../../src/adapters/http.js';

// wrap() keeps the handler's own request and response types.
const handler: WrappedHandler<IncomingMessage, ServerResponse> = wrap((req: IncomingMessage, res: ServerResponse) => {
  res.end(req.url);
}, '/dev/shm/app-status.json');
createServer(handler).listen(3000);
const asyncHandler = wrap(
  async (_req: IncomingMessage, res: ServerResponse) => {
    res.end('ok');
  },
  '/dev/shm/app-status.json',
  { interval: 1000 },
);
createServer(asyncHandler);
void handler.monitor.tick();

// instrument() takes any server that emits 'request': http, https, http2.
const status: Instrumentation = instrument(createServer(), '/dev/shm/app-status.json', { workerId: 2 });
instrument(createHttpsServer(), '/dev/shm/app-status.json');
instrument(
  createHttp2Server((_req: Http2ServerRequest, res: Http2ServerResponse) => res.end()),
  '/dev/shm/app-status.json',
);
const done: Promise<void> = status.close();
void done;

// @ts-expect-error a plain object is not a server
instrument({}, '/dev/shm/app-status.json');
// @ts-expect-error the path is required
instrument(createServer());
// @ts-expect-error wrap() takes a function
wrap('handler', '/dev/shm/app-status.json');
// @ts-expect-error recordRequest is a boolean
wrap((_req: IncomingMessage, res: ServerResponse) => res.end(), '/dev/shm/app-status.json', { recordRequest: 'yes' });
