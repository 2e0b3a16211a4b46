import express from 'express';
import { wsgiStatus } from 'wsgi-status';

const app = express();
const status = wsgiStatus(process.env.STATUS_FILE ?? '/dev/shm/app-status.json'); // first, so it sees every request
app.use(status);
app.get('/', (req, res) => res.send('hello\n'));

const server = app.listen(process.env.PORT ?? 3000, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close(() => status.close())); // close() removes this process's slot
