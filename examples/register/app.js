// A plain node:http app: not a line of wsgi-status in it. Run it with the register:
//   WSGI_STATUS_FILE=/dev/shm/app-status.json node --import wsgi-status/register examples/register/app.js
import { createServer } from 'node:http';

const server = createServer((req, res) => res.end('hello\n'));
server.listen(process.env.PORT ?? 3000, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close());
