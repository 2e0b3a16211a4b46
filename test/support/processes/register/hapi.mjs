// A Hapi app: Hapi owns its http.Server (server.listener); the register sees its requests all the same.
import Hapi from '@hapi/hapi';

const server = Hapi.server({ port: 0, host: '127.0.0.1' });
const held = [];
server.route({ method: 'GET', path: '/', handler: () => 'ok' });
server.route({
  method: 'GET',
  path: '/fail',
  handler: () => {
    throw new Error('handler failed'); // Hapi answers 500
  },
});
server.route({ method: 'GET', path: '/hold', handler: () => new Promise((resolve) => held.push(resolve)) });
server.route({ method: 'GET', path: '/abort', handler: () => new Promise(() => {}) });
server.route({
  method: 'GET',
  path: '/release',
  handler: () => {
    for (const resolve of held.splice(0)) resolve('released');
    return 'ok';
  },
});
await server.start();
process.stdout.write(`${JSON.stringify({ port: server.info.port })}\n`);
