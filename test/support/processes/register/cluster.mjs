// A node:cluster app, 4 workers on one port, no wsgi-status code: started with NODE_OPTIONS=--import wsgi-status/register.
import cluster from 'node:cluster';
import { createServer } from 'node:http';

const WORKERS = 4;
if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    if (++listening === WORKERS) process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  });
  // Port 0 in cluster workers: the first picks a port, the others share it (node:cluster docs).
  for (let i = 0; i < WORKERS; i++) cluster.fork();
} else {
  createServer((_req, res) => res.end(`ok from ${process.pid}`)).listen(0, '127.0.0.1');
}
