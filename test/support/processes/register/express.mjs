// An Express 5 app. With WITH_MIDDLEWARE=1 it also mounts wsgi-status's own middleware on the same file.
import express from 'express';

const app = express();
if (process.env.WITH_MIDDLEWARE === '1') {
  const { wsgiStatus } = await import('wsgi-status/express');
  app.use(wsgiStatus(process.env.WSGI_STATUS_FILE, { interval: 100 }));
}
const held = [];
app.get('/', (_req, res) => res.send('ok'));
app.get('/fail', () => {
  throw new Error('handler failed'); // Express answers 500
});
app.get('/hold', (_req, res) => held.push(res));
app.get('/abort', () => {});
app.get('/release', (_req, res) => {
  for (const waiting of held.splice(0)) waiting.send('released');
  res.send('ok');
});
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
