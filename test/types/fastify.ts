/** A consumer of `wsgi-status/fastify` (Fastify 4 and 5), as its types see it. */
import Fastify from 'fastify';
import wsgiStatus, { type WsgiStatusFastifyOptions } from '../../src/adapters/fastify.js';
import type { WsgiStatusMonitor } from '../../src/monitor.js';

const app = Fastify();
await app.register(wsgiStatus, { path: '/dev/shm/app-status.json', interval: 500 });
const options: WsgiStatusFastifyOptions = { path: '/dev/shm/app-status.json', onError: (error: Error) => app.log.warn(error) };
app.register(wsgiStatus, options);

// The decoration is typed on every instance, encapsulated ones included.
const monitor: WsgiStatusMonitor = app.wsgiStatus;
app.register(async (child) => {
  const same: WsgiStatusMonitor = child.wsgiStatus;
  void same;
});
void monitor.tick();

// An HTTP/2 instance takes the plugin too.
const h2 = Fastify({ http2: true });
h2.register(wsgiStatus, { path: '/dev/shm/app-status.json' });

// @ts-expect-error path is required
app.register(wsgiStatus, { interval: 500 });
// @ts-expect-error path is a string
app.register(wsgiStatus, { path: 1 });
// @ts-expect-error staleAfter is a number
app.register(wsgiStatus, { path: '/dev/shm/app-status.json', staleAfter: '10s' });
// @ts-expect-error the decoration is read-only
app.wsgiStatus = monitor;
