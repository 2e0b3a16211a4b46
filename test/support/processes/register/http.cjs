// The same app as http.mjs, as CommonJS: loaded with --require wsgi-status/register.
const { createServer } = require('node:http');

const held = [];
const server = createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/fail') res.statusCode = 500;
  if (path === '/hold') return held.push(res);
  if (path === '/abort') return;
  if (path === '/release') for (const waiting of held.splice(0)) waiting.end('released');
  res.end('ok');
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
