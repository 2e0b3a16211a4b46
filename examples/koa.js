import Koa from 'koa';
import wsgiStatus from 'wsgi-status/koa';

const app = new Koa();
const status = wsgiStatus(process.env.STATUS_FILE ?? '/dev/shm/app-status.json'); // first, so it sees every request and error
app.use(status);
app.use((ctx) => {
  ctx.body = 'hello\n';
});

const server = app.listen(process.env.PORT ?? 3000, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on('SIGTERM', () => server.close(() => status.close()));
