import { createServer } from 'node:http';
import { instrument } from 'wsgi-status/http';

// Any http.Server: https and http2 servers too, Hapi's server.listener,
// NestJS's app.getHttpServer(), a Next.js custom server.
const server = createServer((req, res) => res.end('hello\n'));
instrument(server, process.env.STATUS_FILE ?? '/dev/shm/app-status.json'); // closes with the server

server.listen(process.env.PORT ?? 3000, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close());
