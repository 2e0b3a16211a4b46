// node:http: wrap a handler, or instrument any http.Server (Hapi's server.listener,
// a Nest or Next.js custom server) with instrument(server, path).
//   npm run build && node examples/http.js   (PORT, STATUS_FILE from the environment)
import { createServer } from 'node:http';
import { wrap } from 'wsgi-status/http';

const statusFile = process.env.STATUS_FILE ?? '/dev/shm/app-status.json';
const handler = wrap((_req, res) => res.end('hello\n'), statusFile);

const server = createServer(handler).listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/, status file ${statusFile}`);
});
process.on('SIGTERM', () => server.close(() => handler.close()));
