// The app PM2 runs in cluster mode (test/register.test.ts): plain node:http, no wsgi-status code.
const { createServer } = require('node:http');

createServer((_req, res) => res.end(`ok from ${process.pid}`)).listen(Number(process.env.PORT), '127.0.0.1', () => {
  process.send?.('ready');
});
