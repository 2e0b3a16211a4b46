// Fastify 4 or 5: register the plugin on the root instance.
//   npm run build && node examples/fastify.js   (PORT, STATUS_FILE from the environment)
import Fastify from 'fastify';
import wsgiStatus from 'wsgi-status/fastify';

const statusFile = process.env.STATUS_FILE ?? '/dev/shm/app-status.json';
const app = Fastify();
await app.register(wsgiStatus, { path: statusFile });
app.get('/', async () => 'hello\n');

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
console.log(`listening on ${address}/, status file ${statusFile}`);
// fastify.close() stops the monitor too and removes this process's slot.
process.on('SIGTERM', () => app.close());
