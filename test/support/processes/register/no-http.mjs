// A process that serves no HTTP (a build step, a CLI) run with the register in NODE_OPTIONS:
// it listens on a plain TCP server, does some work and exits.
import { createServer } from 'node:net';

const server = createServer((socket) => socket.end('hi'));
server.listen(0, '127.0.0.1', async () => {
  const { connect } = await import('node:net');
  const socket = connect(server.address().port, '127.0.0.1');
  socket.on('data', () => {});
  socket.on('close', () => {
    server.close();
    setTimeout(() => process.stdout.write('done\n'), 300);
  });
});
