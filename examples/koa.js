// Koa 2 or 3: one line, first in the stack.
//   npm run build && node examples/koa.js   (PORT, STATUS_FILE from the environment)
import Koa from 'koa';
import wsgiStatus from 'wsgi-status/koa';

const statusFile = process.env.STATUS_FILE ?? '/dev/shm/app-status.json';
const app = new Koa();
const status = wsgiStatus(statusFile);
app.use(status);
app.use((ctx) => {
  ctx.body = 'hello\n';
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/, status file ${statusFile}`);
});
process.on('SIGTERM', () => server.close(() => status.close()));
