import { createServer } from 'node:http';
import { wrap } from 'wsgi-status/http';

// A handler that throws or rejects is counted in `exceptions`; the error goes on as before.
const handler = wrap((req, res) => res.end('hello\n'), process.env.STATUS_FILE ?? '/dev/shm/app-status.json');

const server = createServer(handler).listen(process.env.PORT ?? 3000, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close(() => handler.close()));
