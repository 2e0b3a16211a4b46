// Express 4 or 5: one line, first in the stack.
//   npm run build && node examples/express.js   (PORT, STATUS_FILE from the environment)
import express from 'express';
import { wsgiStatus } from 'wsgi-status';

const statusFile = process.env.STATUS_FILE ?? '/dev/shm/app-status.json';
const app = express();
const status = wsgiStatus(statusFile);
app.use(status);
app.get('/', (_req, res) => res.send('hello\n'));

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/, status file ${statusFile}`);
});
process.on('SIGTERM', () => server.close(() => status.close()));
