/** A consumer of `wsgi-status` (Express 4/5 middleware), as its types see it. */
import express from 'express';
import wsgiStatus, { type WsgiStatusMiddleware, type WsgiStatusMonitor } from '../../src/index.js';

const app = express();
const middleware: WsgiStatusMiddleware = wsgiStatus('/dev/shm/app-status.json', {
  interval: 500,
  onError: (error: Error) => console.error(error.message),
});
app.use(middleware);
app.use('/api', wsgiStatus('/dev/shm/api-status.json'));

const monitor: WsgiStatusMonitor = middleware.monitor;
const path: string = monitor.path;
const closed: Promise<void> = middleware.close();
void path;
void closed;

// @ts-expect-error the path is required
wsgiStatus();
// @ts-expect-error interval is a number of milliseconds
wsgiStatus('/dev/shm/app-status.json', { interval: '1s' });
// @ts-expect-error unknown options are rejected
wsgiStatus('/dev/shm/app-status.json', { intervall: 500 });
// @ts-expect-error the monitor is read-only
middleware.monitor = monitor;
