import Fastify from 'fastify';
import wsgiStatus from 'wsgi-status/fastify';

const app = Fastify();
// Once, on the root instance: routes in every encapsulated context are counted.
await app.register(wsgiStatus, { path: process.env.STATUS_FILE ?? '/dev/shm/app-status.json' });
app.get('/', async () => 'hello\n');

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
console.log(`listening on ${address}/`);
process.on('SIGTERM', () => app.close()); // also stops the monitor (app.wsgiStatus) and removes the slot
