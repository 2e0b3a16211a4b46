/**
 * The operator-side examples (examples/monitoring/): every address each tool
 * is pointed at is served by the sidecar commands of sidecar.sh, and read the
 * way that tool reads it (raw socket until EOF, an HTTP GET, or the file),
 * through the strict decoder. The `wsgi-status mackerel` command line of
 * mackerel-agent.conf is run as it stands.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { instrument } from '../src/adapters/http.ts';
import { Children } from './support/children.ts';
import { closeServer, freePort, get, listen, tempDir, waitForStatus } from './support/helpers.ts';
import { readRaw, runCli, strictDecode } from './support/stats-helpers.ts';

const monitoring = new URL('../examples/monitoring/', import.meta.url).pathname;
const read = (name: string) => readFileSync(join(monitoring, name), 'utf8');

describe('examples/monitoring', () => {
  const { dir, cleanup } = tempDir();
  const children = new Children();
  const app = createServer((_req, res) => res.end('ok'));
  let status: ReturnType<typeof instrument>;
  /** Turns the documented addresses into this test's. */
  let localise: (text: string) => string = (text) => text;

  before(async () => {
    const statusFile = join(dir, 'app-status.json');
    const [raw, http] = [await freePort(), await freePort()];
    localise = (text) =>
      text
        .replaceAll('/run/app/stats.sock', join(dir, 'stats.sock'))
        .replaceAll('/dev/shm/app-status.json', statusFile)
        .replaceAll('127.0.0.1:1717', `127.0.0.1:${raw}`)
        .replaceAll('127.0.0.1:1718', `127.0.0.1:${http}`);
    status = instrument(app, statusFile, { interval: 50 });
    const port = await listen(app);
    for (let i = 0; i < 3; i++) await get(port, '/');
    await waitForStatus(statusFile, (d) => d.workers[0]?.requests === 3);
    // The sidecars, exactly as sidecar.sh starts them.
    for (const line of localise(read('sidecar.sh')).split('\n')) {
      const command = /^wsgi-status (serve .*?)\s*&?$/.exec(line)?.[1];
      if (command) children.spawnNode([new URL('../src/cli/main.ts', import.meta.url).pathname, ...command.split(/\s+/)]);
    }
    for (const target of [
      { path: join(dir, 'stats.sock') },
      { host: '127.0.0.1', port: raw },
      { host: '127.0.0.1', port: http },
    ]) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        try {
          await readRaw(target, { send: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 2000 });
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  });
  after(async () => {
    await children.killAll();
    await status.close();
    await closeServer(app);
    cleanup();
  });

  /** Reads `uri` the way a uWSGI stats reader does, and decodes it strictly. */
  async function fetchDocument(uri: string): Promise<Record<string, unknown>> {
    let text: string;
    if (uri.startsWith('http://')) {
      const { hostname, host, port } = new URL(uri);
      const answer = (
        await readRaw({ host: hostname, port: Number(port) }, { send: `GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n` })
      ).data.toString();
      assert.match(answer, /^HTTP\/1\.0 200 OK\r\n/);
      text = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    } else if (uri.startsWith('file://')) {
      text = readFileSync(uri.slice('file://'.length), 'utf8');
    } else if (uri.startsWith('unix://') || uri.startsWith('/')) {
      text = (await readRaw({ path: uri.replace(/^unix:\/\//, '') })).data.toString();
    } else {
      const [host, port] = uri.replace(/^tcp:\/\//, '').split(':');
      text = (await readRaw({ host, port: Number(port) })).data.toString();
    }
    const document = strictDecode(text, { ours: true }) as { workers: { pid: number; requests: number }[] };
    assert.equal(document.workers.length, 1, uri);
    assert.equal(document.workers[0].pid, process.pid, uri);
    assert.ok(document.workers[0].requests >= 3, uri);
    return document;
  }

  it('should serve Telegraf every server of its inputs.uwsgi', async () => {
    const servers = JSON.parse(/servers = (\[.*\])/.exec(localise(read('telegraf.conf')))![1]) as string[];
    assert.equal(servers.length, 3);
    for (const uri of servers) await fetchDocument(uri);
  });

  it("should serve uwsgi_exporter each of its --stats.uri forms, the file's included", async () => {
    const uris = [...localise(read('uwsgi_exporter.sh')).matchAll(/--stats\.uri=(\S+)/g)].map((m) => m[1]);
    assert.deepEqual(
      uris.map((uri) => uri.split(':')[0]),
      ['unix', 'tcp', 'http', 'file'],
    );
    for (const uri of uris) await fetchDocument(uri);
  });

  it('should serve uwsgitop a socket path, host:port and an http:// URL', async () => {
    const targets = [...localise(read('uwsgitop.sh')).matchAll(/uwsgitop (\S+)/g)].map((m) => m[1]);
    assert.equal(targets.length, 3);
    for (const target of targets) await fetchDocument(target);
  });

  it("should serve Netdata's addresses with no request sent", async () => {
    const addresses = [...localise(read('netdata-uwsgi.conf')).matchAll(/address: (\S+)/g)].map((m) => m[1]);
    assert.equal(addresses.length, 2);
    for (const address of addresses) await fetchDocument(address);
  });

  it("should serve mackerel-plugin-uwsgi-vassal's socket, and run the wsgi-status mackerel command as configured", async () => {
    const commands = [...localise(read('mackerel-agent.conf')).matchAll(/^command = (\[.*\])$/gm)].map(
      (m) => JSON.parse(m[1]) as string[],
    );
    const vassal = commands.find((command) => command[0] === 'mackerel-plugin-uwsgi-vassal')!;
    await fetchDocument(vassal[vassal.indexOf('-socket') + 1]);
    const ours = commands.find((command) => command[0] === 'wsgi-status')!;
    const run = await runCli(children, ours.slice(1), { env: { MACKEREL_PLUGIN_WORKDIR: dir } });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    for (const line of lines) assert.match(line, /^[\w.-]+\t-?\d+(\.\d+)?\t\d+$/);
    const value = (name: string) => Number(lines.find((line) => line.startsWith(`${name}\t`))?.split('\t')[1]);
    assert.equal(value('uWSGI.uWSGI.workers.idle') + value('uWSGI.uWSGI.workers.busy'), 1);
  });
});
