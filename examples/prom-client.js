import express from 'express';
import { Registry } from 'prom-client';
import { wsgiStatus } from 'wsgi-status';
import { collectUwsgiMetrics } from 'wsgi-status/prometheus';

const statusFile = process.env.STATUS_FILE ?? '/dev/shm/app-status.json';
const app = express();
const status = wsgiStatus(statusFile);
app.use(status);

// Every worker's /metrics reads the shared file at scrape time: all workers, no IPC primary.
const registry = new Registry();
collectUwsgiMetrics({ path: statusFile, register: registry });
app.get('/metrics', async (req, res) => {
  res.type(registry.contentType).send(await registry.metrics());
});
app.get('/', (req, res) => res.send('hello\n'));

const server = app.listen(process.env.PORT ?? 3000, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close(() => status.close())); // close() removes this process's slot
