/**
 * Issue 5: the `wsgi-status` command, run from source as its own process
 * (`node --import tsx src/cli/main.ts`), against a real app, a real status
 * file and real stats sockets.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { instrument } from '../src/adapters/http.ts';
import { formatValues, graphDefinitions } from '../src/cli/mackerel.ts';
import type { UwsgiDocument } from '../src/model/document.ts';
import { formatUwsgiJson } from '../src/model/format.ts';
import { createStatusFileProvider } from '../src/server/providers.ts';
import { StatsServer } from '../src/server/stats-server.ts';
import { Children } from './support/children.ts';
import { closeServer, get, listen, sleep, tempDir } from './support/helpers.ts';
import { assertOneLineError, CLI, LineReader, readRaw, runCli, runInProcess, strictDecode } from './support/stats-helpers.ts';

const HTTP_CAPTURE = readFileSync(new URL('fixtures/uwsgi-2.0.21-stats-http-response.raw', import.meta.url));
const CAPTURE_HEAD = HTTP_CAPTURE.subarray(0, HTTP_CAPTURE.indexOf('\r\n\r\n') + 4).toString('latin1');

/** An HTTP/1.1 request on its own connection; `connected` once the TCP handshake is done. */
function rawGet(port: number, path: string): { connected: Promise<void>; response: Promise<string> } {
  const socket = connect({ host: '127.0.0.1', port });
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      resolve();
    });
    socket.once('error', reject);
  });
  const response = new Promise<string>((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.once('end', () => resolve(text));
    socket.once('error', reject);
  });
  return { connected, response };
}

const decode = (data: Buffer) => strictDecode(data.toString('utf8'), { ours: true }) as unknown as UwsgiDocument;

describe('wsgi-status (CLI)', () => {
  const children = new Children();
  afterEach(() => children.killAll());
  const { dir, cleanup } = tempDir('wsgi-status-cli-');

  // One app in this process: a status file, a stats socket, plus TCP and HTTP stats servers over the same file.
  const file = join(dir, 'status.json');
  const sock = join(dir, 'stats.sock');
  const app = createHttpServer((_req, res) => res.end('ok'));
  const status = instrument(app, file, { interval: 60_000, stats: sock });
  const provider = createStatusFileProvider({ path: file, identity: (fromFile) => fromFile ?? assert.fail('no identity') });
  const tcp = new StatsServer({ address: '127.0.0.1:0', provider });
  const http = new StatsServer({ address: '127.0.0.1:0', http: true, provider });
  let appPort = 0;
  const requests = async (count: number) => {
    for (let i = 0; i < count; i++) await get(appPort);
    await status.monitor.tick();
  };

  before(async () => {
    appPort = await listen(app);
    await Promise.all([status.monitor.stats?.listen(), tcp.listen(), http.listen()]);
    await requests(3);
  });
  after(async () => {
    await Promise.all([tcp.close(), http.close()]);
    await status.close();
    await closeServer(app);
    // Last: the monitor's final write would recreate a directory removed before it.
    cleanup();
  });

  describe('when asked for help', () => {
    it('should print usage for every command and exit 0', async () => {
      const runs = [await runCli(children, ['--help'])];
      for (const args of [
        ['show', '--help'],
        ['top', '--help'],
        ['serve', '--help'],
        ['mackerel', '-h'],
      ]) {
        runs.push(await runInProcess(args));
      }
      for (const run of runs) {
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /^Usage: wsgi-status /);
        assert.equal(run.stderr, '');
      }
      assert.match(runs[3].stdout, /--stats-http/);
      assert.match(runs[4].stdout, /--metric-key-prefix/);
    });

    it('should fail with usage on no command or an unknown one', async () => {
      const [none, unknown] = [await runInProcess([]), await runCli(children, ['frobnicate'])];
      assert.equal(none.code, 2);
      assert.match(none.stdout, /^Usage:/);
      assertOneLineError(unknown, /unknown command "frobnicate"/);
      assert.equal(unknown.code, 2);
    });
  });

  describe('show', () => {
    it('should print the document in uWSGI format from a file, a socket, TCP and HTTP alike', async () => {
      const tcpPort = (tcp.address as { port: number }).port;
      const httpPort = (http.address as { port: number }).port;
      const targets = [
        sock,
        `unix://${sock}`,
        `127.0.0.1:${tcpPort}`,
        `tcp://127.0.0.1:${tcpPort}`,
        `http://127.0.0.1:${httpPort}/`,
      ];
      const runs = [await runCli(children, ['show', file])];
      for (const target of targets) runs.push(await runInProcess(['show', target]));
      for (const run of runs) {
        assert.equal(run.code, 0, run.stderr);
        const text = run.stdout.replace(/\n$/, '');
        const document = strictDecode(text, { ours: true }) as unknown as UwsgiDocument;
        assert.equal(formatUwsgiJson(document), text, "uWSGI's own format");
        assert.deepEqual(
          document.workers.map((w) => [w.pid, w.requests]),
          [[process.pid, 3]],
        );
      }
    });

    it('should print a table with --table', async () => {
      const run = await runInProcess(['show', file, '--table']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /1 worker \(1 idle\) · 3 requests · listen queue 0/);
      assert.match(run.stdout, /^WID\s+PID\s+STATUS\s+REQ\s+INFLT/m);
      assert.match(run.stdout, new RegExp(`^\\s*1\\s+${process.pid}\\s+idle\\s+3\\s+0\\s`, 'm'));
      assert.match(run.stdout, new RegExp(`sockets: 127\\.0\\.0\\.1:${appPort} 0/\\d+`));
    });

    it('should give one clear line and a non-zero exit on bad input', async () => {
      const invalid = join(dir, 'invalid.json');
      writeFileSync(invalid, '{"workers": [');
      // A file that is not JSON or not a file stops show; foreign JSON gives a document (test/foreign-file.test.ts).
      const fifo = join(dir, 'fifo.json');
      execFileSync('mkfifo', [fifo]);
      const refused = createServer();
      await new Promise<void>((resolve) => refused.listen(0, '127.0.0.1', resolve));
      const closedPort = (refused.address() as { port: number }).port;
      await new Promise((resolve) => refused.close(resolve));
      const cases: Array<[string[], RegExp]> = [
        [['show', join(dir, 'missing.json')], /missing\.json: no such file or socket/],
        [['show', invalid], /invalid\.json holds invalid JSON/],
        [['show', fifo], /fifo\.json is not a regular file \(not read\)/],
        [['show', dir], /it is a directory \(EISDIR\)/],
        [
          ['show', `unix://${join(dir, 'nobody.sock')}`],
          /cannot read stats from unix:\/\/.*nobody\.sock: no such socket \(ENOENT\)/,
        ],
        [['show', `127.0.0.1:${closedPort}`], /connection refused \(ECONNREFUSED\)/],
        [['show'], /show: missing the status file or stats address/],
        [['show', file, '--json', '--table'], /choose one of --json and --table/],
        [['show', file, '--colour'], /show: Unknown option '--colour'/],
        [['show', file, '--timeout', 'soon'], /--timeout must be an integer/],
      ];
      // Two as real processes (exit status, no stack trace), the rest in process.
      const runs = await Promise.all(cases.map(([args], i) => (i < 2 ? runCli(children, args) : runInProcess(args))));
      for (const [i, run] of runs.entries()) assertOneLineError(run, cases[i][1]);
      assert.equal(runs[8].code, 2, 'bad usage exits 2');
    });
  });

  describe('serve', () => {
    it('should report the listen queue of an app whose event loop is blocked, and 0 once it is served (acceptance 3)', async (t) => {
      const appFile = join(dir, 'blocked.json');
      const statsSock = join(dir, 'blocked.sock');
      const blocked = children.spawnNode(['test/support/processes/stats/app.ts', appFile], { env: { BLOCK_MS: '5000' } });
      const appOut = new LineReader(blocked);
      const { port } = await appOut.waitForJson<{ port: number }>('ready', 20_000);
      const sidecar = children.spawnNode([CLI, 'serve', appFile, '--stats', statsSock]);
      await new LineReader(sidecar).waitFor((line) => line.includes('listening on'), 20_000, 'the sidecar listening');

      const idle = decode((await readRaw({ path: statsSock })).data);
      assert.deepEqual(
        idle.sockets.map((s) => [s.name, s.queue]),
        [[`127.0.0.1:${port}`, 0]],
      );
      assert.equal(idle.workers[0].pid, blocked.pid);

      const block = rawGet(port, '/block');
      await appOut.waitForJson('blocking');
      const blockedAt = Date.now();
      const pending = Array.from({ length: 20 }, () => rawGet(port, '/'));
      await Promise.all(pending.map((p) => p.connected));
      // The kernel completes the handshakes; the blocked app accepts none of them.
      let during: UwsgiDocument;
      for (;;) {
        during = decode((await readRaw({ path: statsSock })).data);
        if (during.listen_queue >= 20 || Date.now() - blockedAt > 3000) break;
        await sleep(50);
      }
      assert.ok(Date.now() - blockedAt < 5000, 'measured while the block lasted');
      t.diagnostic(`during the block: listen_queue ${during.listen_queue}, sockets[0].queue ${during.sockets[0].queue}`);
      assert.ok(Math.abs(during.listen_queue - 20) <= 1, `listen_queue ${during.listen_queue}`);
      assert.equal(during.sockets[0].queue, during.listen_queue);
      assert.equal(during.load, during.listen_queue);
      assert.equal(during.workers[0].pid, blocked.pid, 'the blocked worker is still listed');

      assert.equal((await block.response).split('\r\n\r\n')[1], 'unblocked');
      const bodies = await Promise.all(pending.map((p) => p.response));
      assert.ok(bodies.every((text) => text.endsWith('\r\n\r\nok')));
      const after = decode((await readRaw({ path: statsSock })).data);
      assert.equal(after.listen_queue, 0);
      assert.equal(after.sockets[0].queue, 0);
      t.diagnostic(`after: listen_queue ${after.listen_queue}, sockets[0].queue ${after.sockets[0].queue}`);
    });

    it("should answer HTTP with uWSGI's status line and headers, and stop cleanly on SIGTERM", async () => {
      const statsSock = join(dir, 'serve-http.sock');
      const sidecar = children.spawnNode([CLI, 'serve', file, '--stats', statsSock, '--stats-http', '--mode', '600']);
      await new LineReader(sidecar).waitFor((line) => line.includes('listening on'), 20_000, 'the sidecar listening');
      assert.equal(lstatSync(statsSock).mode & 0o777, 0o600);
      const { data } = await readRaw({ path: statsSock }, { send: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' });
      const text = data.toString('utf8');
      assert.equal(text.slice(0, CAPTURE_HEAD.length), CAPTURE_HEAD);
      assert.equal(decode(Buffer.from(text.slice(CAPTURE_HEAD.length))).workers[0].pid, process.pid);
      const exited = new Promise((resolve) => sidecar.once('exit', (code) => resolve(code)));
      sidecar.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.throws(() => lstatSync(statsSock), { code: 'ENOENT' });
    });

    it('should serve an empty workers list, never a missing one, before the app has written', async () => {
      const statsSock = join(dir, 'early.sock');
      const sidecar = children.spawnNode([CLI, 'serve', join(dir, 'not-yet.json'), '--stats', statsSock]);
      await new LineReader(sidecar).waitFor((line) => line.includes('listening on'), 20_000, 'the sidecar listening');
      const document = decode((await readRaw({ path: statsSock })).data);
      assert.deepEqual(document.workers, []);
    });

    it('should give one clear line and a non-zero exit when it cannot serve', async () => {
      const regular = join(dir, 'regular.sock');
      writeFileSync(regular, 'keep me');
      const statusDir = join(dir, 'status-is-a-dir.json');
      mkdirSync(statusDir);
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const takenPort = (taken.address() as { port: number }).port;
      try {
        const cases: Array<[string[], RegExp]> = [
          [['serve', file, '--stats', regular], /regular\.sock: a file that is not a socket is in the way \(left untouched\)/],
          [['serve', file, '--stats', join(dir, 'no', 'such', 'dir.sock')], /the directory .*no\/such does not exist/],
          [['serve', file, '--stats', `127.0.0.1:${takenPort}`], /address already in use \(EADDRINUSE\)/],
          [['serve', statusDir, '--stats', join(dir, 'x.sock')], /cannot read .*status-is-a-dir\.json: EISDIR/],
          [['serve', file], /missing --stats/],
          [['serve', file, '--stats', join(dir, 'y.sock'), '--mode', '999'], /--mode must be an octal file mode/],
          [['serve', file, '--stats', 'localhost:99999'], /port above 65535/],
        ];
        const runs = await Promise.all(cases.map(([args], i) => (i < 1 ? runCli(children, args) : runInProcess(args))));
        for (const [i, run] of runs.entries()) assertOneLineError(run, cases[i][1]);
        assert.equal(readFileSync(regular, 'utf8'), 'keep me');
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
    });
  });

  describe('top', () => {
    for (const quit of ['q', 'SIGINT'] as const) {
      it(`should refresh a live view and quit on ${quit} (stdin not a terminal)`, async () => {
        const child = children.spawnNode([CLI, 'top', sock, '--interval', '200']);
        const reader = new LineReader(child);
        await reader.waitFor((line) => /^WID\s+PID\s+STATUS\s+REQ\s+REQ\/S/.test(line), 20_000, 'a frame');
        await requests(4);
        // A later frame shows the new requests, with a rate.
        const row = await reader.waitFor(
          (line) => new RegExp(`^\\s*1\\s+${process.pid}\\s+idle\\s+\\d+\\s+\\d+\\.\\d`).test(line),
          10_000,
          'a row with a req/s figure',
        );
        assert.ok(row);
        assert.ok(reader.lines.some((line) => line.startsWith(`wsgi-status top · unix://${sock}`)));
        assert.ok(!reader.lines.join('\n').includes('\x1b['), 'no terminal codes when stdout is not a terminal');
        const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
        if (quit === 'q') child.stdin.write('q');
        else child.kill('SIGINT');
        assert.equal(await exited, 0);
      });
    }

    it('should fail with one line when the address is not there', async () => {
      assertOneLineError(await runCli(children, ['top', join(dir, 'gone.sock')]), /gone\.sock: no such file or socket/);
    });
  });

  describe('mackerel', () => {
    const state = join(dir, 'mackerel-state');
    const LINE = /^([A-Za-z0-9._-]+)\t(\d+\.\d{6})\t(\d{10})$/;
    const parse = (stdout: string) =>
      new Map(
        stdout
          .trimEnd()
          .split('\n')
          .map((line) => LINE.exec(line)!.slice(1, 4) as [string, string, string])
          .map(([n, v, e]) => [n, { value: v, epoch: Number(e) }]),
      );

    it('should print plugin lines, and the per-minute request rate on its second run (acceptance 5)', async (t) => {
      const first = await runCli(children, ['mackerel', file, '--tempfile', state]);
      assert.equal(first.code, 0, first.stderr);
      for (const line of first.stdout.trimEnd().split('\n')) assert.match(line, LINE);
      const values = parse(first.stdout);
      assert.equal(values.get('uWSGI.uWSGI.workers.idle')?.value, '1.000000');
      assert.equal(values.get('uWSGI.uWSGI.workers.busy')?.value, '0.000000');
      assert.equal(values.get('uWSGI.uWSGI.workers.cheap')?.value, '0.000000');
      assert.equal(values.get('uWSGI.uWSGI.workers.pause')?.value, '0.000000');
      assert.equal(values.get('uWSGI.uWSGI.listen_queue.listen_queue')?.value, '0.000000');
      assert.ok(!values.has('uWSGI.uWSGI.req.requests'), 'no rate without a previous run');

      // As if the first run had been 30 s ago (the agent runs plugins every minute).
      const saved = JSON.parse(readFileSync(state, 'utf8')) as Record<string, number>;
      assert.equal(typeof saved._lastTime, 'number');
      const previous = saved.requests;
      saved._lastTime -= 30;
      writeFileSync(state, JSON.stringify(saved));
      await requests(12);
      const second = await runCli(children, ['mackerel', file, '--tempfile', state]);
      assert.equal(second.code, 0, second.stderr);
      const rate = parse(second.stdout).get('uWSGI.uWSGI.req.requests');
      assert.ok(rate, second.stdout);
      assert.equal(typeof previous, 'number');
      assert.equal(rate.value, ((12 * 60) / (rate.epoch - saved._lastTime)).toFixed(6));
      t.diagnostic(`second run: uWSGI.uWSGI.req.requests ${rate.value} (12 requests over ${rate.epoch - saved._lastTime} s)`);

      // Every value printed belongs to a graph the meta run defines.
      const meta = await runCli(children, ['mackerel', file], { env: { MACKEREL_AGENT_PLUGIN_META: '1' } });
      const graphs = (JSON.parse(meta.stdout.split('\n')[1]) as { graphs: Record<string, { metrics: Array<{ name: string }> }> })
        .graphs;
      const defined = new Set(Object.entries(graphs).flatMap(([key, graph]) => graph.metrics.map((m) => `${key}.${m.name}`)));
      for (const name of parse(second.stdout).keys()) assert.ok(defined.has(name), `${name} has a graph definition`);
    });

    it('should print the meta header and the graph definitions of mackerel-plugin-uwsgi-vassal', async () => {
      const meta = await runInProcess(['mackerel', `unix://${sock}`], { MACKEREL_AGENT_PLUGIN_META: '1' });
      assert.equal(meta.code, 0, meta.stderr);
      const [header, json, rest] = meta.stdout.split('\n');
      assert.equal(header, '# mackerel-agent-plugin');
      assert.equal(rest, '');
      const { graphs } = JSON.parse(json) as { graphs: Record<string, unknown> };
      assert.deepEqual(graphs['uWSGI.uWSGI.workers'], {
        label: 'UWSGI Workers',
        unit: 'integer',
        metrics: [
          { name: 'busy', label: 'Busy', stacked: true },
          { name: 'idle', label: 'Idle', stacked: true },
          { name: 'cheap', label: 'Cheap', stacked: true },
          { name: 'pause', label: 'Pause', stacked: true },
        ],
      });
      assert.deepEqual(graphs['uWSGI.uWSGI.req'], {
        label: 'UWSGI Requests',
        unit: 'float',
        metrics: [{ name: 'requests', label: 'Requests', stacked: false }],
      });
      assert.ok('uWSGI.uWSGI.listen_queue' in graphs);
      assert.deepEqual(Object.keys(graphs), [...Object.keys(graphs)].sort(), 'sorted, as Go marshals a map');
      assert.deepEqual(Object.keys(JSON.parse(graphDefinitions('uWSGI', true).split('\n')[1]).graphs), [
        'uWSGI.uWSGI.req',
        'uWSGI.uWSGI.workers',
      ]);
    });

    it('should take --socket and --metric-key-prefix as the vassal plugin does', async () => {
      const run = await runInProcess([
        'mackerel',
        '--socket',
        `unix://${sock}`,
        '--metric-key-prefix',
        'app',
        '--tempfile',
        join(dir, 'app-state'),
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(parse(run.stdout).has('app.app.workers.idle'));
    });

    it('should skip the rate as go-mackerel-plugin does: too recent, reset, or too old', () => {
      const values = new Map([
        ['idle', 1],
        ['requests', 100],
      ]);
      const now = 1_800_000_000_000;
      const at = (secondsAgo: number, requests: number) => ({ values: { requests }, lastTime: now / 1000 - secondsAgo });
      assert.deepEqual(formatValues('uWSGI', true, values, { values: {}, lastTime: now / 1000 }, now + 500).lines, []);
      const reset = formatValues('uWSGI', true, values, at(60, 500), now);
      assert.ok(!reset.lines.some((l) => l.includes('.req.')));
      assert.match(reset.notes.join(), /counter seems to be reset/);
      assert.ok(!formatValues('uWSGI', true, values, at(601, 10), now).lines.some((l) => l.includes('.req.')));
      assert.deepEqual(
        formatValues('uWSGI', true, values, at(60, 40), now).lines.find((l) => l.includes('.req.')),
        `uWSGI.uWSGI.req.requests\t60.000000\t${now / 1000}`,
      );
    });

    it('should give one line and a non-zero exit when the source is unreachable', async () => {
      assertOneLineError(
        await runInProcess(['mackerel', `unix://${join(dir, 'nope.sock')}`, '--tempfile', join(dir, 'nope-state')]),
        /cannot read stats from unix:\/\/.*nope\.sock/,
      );
    });
  });
});
