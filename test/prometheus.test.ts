/**
 * Issue 15: `GET /metrics` in uwsgi_exporter's names, and the prom-client
 * bridge `wsgi-status/prometheus`. Real tools: Debian's `promtool` lints
 * every exposition, a real Prometheus server scrapes the sidecar and an
 * app's own stats server, and a real Express + prom-client app runs on 4
 * node:cluster workers.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { UwsgiDocument, UwsgiWorker } from '../src/model/document.ts';
import { collectUwsgiMetrics } from '../src/prometheus.ts';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from '../src/server/prometheus.ts';
import { StatsServer } from '../src/server/stats-server.ts';
import { Children } from './support/children.ts';
import { freePort, get, readStatus, sleep, tempDir, waitForStatus } from './support/helpers.ts';
import { CLI, LineReader } from './support/stats-helpers.ts';

const FIXTURES = new URL('fixtures/', import.meta.url);
const CAPTURES = readdirSync(FIXTURES)
  .filter((name) => /^uwsgi-.*\.json$/.test(name))
  .sort();
const capture = (name: string) => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as UwsgiDocument;

// ---------------------------------------------------------------------------
// A parser for the text exposition format, independent of the renderer.
// ---------------------------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  samples: Sample[];
  help: Map<string, string>;
  type: Map<string, string>;
}

function unescapeText(text: string): string {
  return text.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseExposition(text: string): Exposition {
  const result: Exposition = { samples: [], help: new Map(), type: new Map() };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      (comment[1] === 'HELP' ? result.help : result.type).set(comment[2], unescapeText(comment[3]));
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(sample, `not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[m[1]] = unescapeText(m[2]);
    result.samples.push({ name: sample[1], labels, value: Number(sample[3]) });
  }
  return result;
}

const sampleKey = (s: Sample) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;

/** Samples as a sorted list of `name{labels} value` strings, for deepEqual with a readable diff. */
function listing(samples: Sample[]): string[] {
  return samples.map((s) => `${sampleKey(s)} ${s.value}`).sort();
}

// ---------------------------------------------------------------------------
// What uwsgi_exporter would export: written from timonwong/uwsgi_exporter
// pkg/collector/exporter.go (collectMetrics, subsystemDescriptors, NewMetrics)
// with --collect.cores off (its default). Conversions: running_time and
// avg_rt are microseconds divided by 1e6; busy/idle/cheap are 1 when
// `status` equals the word; workers with id 0 are dropped; sockets are keyed
// by (name, proto), first wins; uwsgi_up has no label.
// ---------------------------------------------------------------------------

type Row<T> = [name: string, type: 'gauge' | 'counter', help: string, value: (item: T) => number];

const MAIN: Row<UwsgiDocument>[] = [
  ['uwsgi_listen_queue_length', 'gauge', 'Length of listen queue.', (d) => d.listen_queue],
  ['uwsgi_listen_queue_errors', 'gauge', 'Number of listen queue errors.', (d) => d.listen_queue_errors],
  ['uwsgi_signal_queue_length', 'gauge', 'Length of signal queue.', (d) => d.signal_queue],
  ['uwsgi_workers', 'gauge', 'Number of workers.', (d) => d.workers.filter((w) => w.id !== 0).length],
];
const SOCKET: Row<UwsgiDocument['sockets'][number]>[] = [
  ['uwsgi_socket_queue_length', 'gauge', 'Length of socket queue.', (s) => s.queue],
  ['uwsgi_socket_max_queue_length', 'gauge', 'Max length of socket queue.', (s) => s.max_queue],
  ['uwsgi_socket_shared', 'gauge', 'Is shared socket?', (s) => s.shared],
  ['uwsgi_socket_can_offload', 'gauge', 'Can socket offload?', (s) => s.can_offload],
];
const WORKER: Row<UwsgiWorker>[] = [
  ['uwsgi_worker_accepting', 'gauge', 'Is this worker accepting requests?', (w) => w.accepting],
  ['uwsgi_worker_delta_requests', 'gauge', 'Number of delta requests', (w) => w.delta_requests],
  ['uwsgi_worker_signal_queue_length', 'gauge', 'Length of signal queue.', (w) => w.signal_queue],
  ['uwsgi_worker_rss_bytes', 'gauge', 'Worker RSS bytes.', (w) => w.rss],
  ['uwsgi_worker_vsz_bytes', 'gauge', 'Worker VSZ bytes.', (w) => w.vsz],
  ['uwsgi_worker_running_time_seconds', 'gauge', 'Worker running time in seconds.', (w) => w.running_time / 1e6],
  ['uwsgi_worker_last_spawn_time_seconds', 'gauge', 'Last spawn time in seconds since epoch.', (w) => w.last_spawn],
  ['uwsgi_worker_average_response_time_seconds', 'gauge', 'Average response time in seconds.', (w) => w.avg_rt / 1e6],
  ['uwsgi_worker_busy', 'gauge', 'Is core in busy?', (w) => (w.status === 'busy' ? 1 : 0)],
  ['uwsgi_worker_idle', 'gauge', 'Is core in idle?', (w) => (w.status === 'idle' ? 1 : 0)],
  ['uwsgi_worker_cheap', 'gauge', 'Is core in cheap mode?', (w) => (w.status === 'cheap' ? 1 : 0)],
  ['uwsgi_worker_requests_total', 'counter', 'Total number of requests.', (w) => w.requests],
  ['uwsgi_worker_exceptions_total', 'counter', 'Total number of exceptions.', (w) => w.exceptions],
  ['uwsgi_worker_harakiri_count_total', 'counter', 'Total number of harakiri count.', (w) => w.harakiri_count],
  ['uwsgi_worker_signals_total', 'counter', 'Total number of signals.', (w) => w.signals],
  ['uwsgi_worker_respawn_count_total', 'counter', 'Total number of respawn count.', (w) => w.respawn_count],
  ['uwsgi_worker_transmitted_bytes_total', 'counter', 'Worker transmitted bytes.', (w) => w.tx],
  ['uwsgi_worker_apps', 'gauge', 'Number of apps.', (w) => w.apps.length],
  ['uwsgi_worker_cores', 'gauge', 'Number of cores.', (w) => w.cores.length],
];
const WORKER_APP: Row<UwsgiWorker['apps'][number]>[] = [
  ['uwsgi_worker_app_startup_time_seconds', 'gauge', 'How long this app took to start.', (a) => a.startup_time],
  ['uwsgi_worker_app_requests_total', 'counter', 'Total number of requests.', (a) => a.requests],
  ['uwsgi_worker_app_exceptions_total', 'counter', 'Total number of exceptions.', (a) => a.exceptions],
];
const UP: Row<null> = ['uwsgi_up', 'gauge', 'Whether the uWSGI server is up.', () => 1];

function exporterWould(document: UwsgiDocument, statsUri: string): Exposition {
  const result: Exposition = { samples: [], help: new Map(), type: new Map() };
  const add = <T>([name, type, help, value]: Row<T>, item: T, labels: Record<string, string>) => {
    result.help.set(name, help);
    result.type.set(name, type);
    result.samples.push({ name, labels, value: value(item) });
  };
  const uri = { stats_uri: statsUri };
  for (const row of MAIN) add(row, document, uri);
  const sockets = new Map<string, UwsgiDocument['sockets'][number]>();
  for (const s of document.sockets) if (!sockets.has(`${s.name}\0${s.proto}`)) sockets.set(`${s.name}\0${s.proto}`, s);
  for (const s of sockets.values()) for (const row of SOCKET) add(row, s, { ...uri, name: s.name, proto: s.proto });
  for (const w of document.workers.filter((worker) => worker.id !== 0)) {
    for (const row of WORKER) add(row, w, { ...uri, worker_id: String(w.id) });
    for (const a of w.apps) {
      const labels = { ...uri, worker_id: String(w.id), app_id: String(a.id), mountpoint: a.mountpoint, chdir: a.chdir };
      for (const row of WORKER_APP) add(row, a, labels);
    }
  }
  add(UP, null, {});
  return result;
}

/** The Node-only families: name → the worker field and its scale. */
const NODE_ONLY: Record<string, (w: UwsgiWorker) => number> = {
  uwsgi_worker_requests_in_flight: (w) => w.in_flight,
  uwsgi_worker_event_loop_utilization_ratio: (w) => w.event_loop_utilization / 1000,
  uwsgi_worker_event_loop_delay_seconds: (w) => w.event_loop_delay / 1e6,
  uwsgi_worker_heap_used_bytes: (w) => w.heap_used,
};

/** Asserts that `text` holds exactly what uwsgi_exporter exports for `document`, plus the Node-only families. */
function assertLikeExporter(text: string, document: UwsgiDocument, statsUri: string, ours: boolean): void {
  const got = parseExposition(text);
  const want = exporterWould(document, statsUri);
  const exporterSamples = got.samples.filter((s) => !(s.name in NODE_ONLY));
  assert.deepEqual(listing(exporterSamples), listing(want.samples));
  for (const [name, help] of want.help) {
    assert.equal(got.help.get(name), help, `HELP of ${name}`);
    assert.equal(got.type.get(name), want.type.get(name), `TYPE of ${name}`);
  }
  const nodeSamples = got.samples.filter((s) => s.name in NODE_ONLY);
  if (!ours) {
    assert.deepEqual(nodeSamples, [], 'a uWSGI document has no Node-only fields');
    return;
  }
  const expected: Sample[] = [];
  for (const w of document.workers) {
    for (const [name, value] of Object.entries(NODE_ONLY)) {
      expected.push({ name, labels: { stats_uri: statsUri, worker_id: String(w.id) }, value: value(w) });
      assert.equal(got.type.get(name), 'gauge', `TYPE of ${name}`);
      assert.ok((got.help.get(name) ?? '').length > 10, `HELP of ${name}`);
    }
  }
  assert.deepEqual(listing(nodeSamples), listing(expected));
}

/** Runs `promtool check metrics` on `text`: it must exit 0 and print nothing (no lint warning). */
function assertPromtoolClean(text: string, what: string): void {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10_000 });
  assert.ifError(run.error ?? null);
  assert.equal(
    `${run.status} ${run.stdout}${run.stderr}`.trim(),
    '0',
    `promtool check metrics on ${what} (install Debian's prometheus package for promtool)`,
  );
}

/** GET /metrics from a stats server, asserting the exposition's content type. */
async function scrape(port: number, path = '/metrics'): Promise<string> {
  const response = await get(port, path);
  assert.equal(response.status, 200);
  assert.equal(response.headers['content-type'], PROMETHEUS_CONTENT_TYPE);
  return response.body;
}

/** A stats server over a fixed document, on 127.0.0.1:0. */
async function serveDocument(provider: () => Promise<UwsgiDocument>, onError?: (error: Error) => void): Promise<StatsServer> {
  const server = new StatsServer({ address: '127.0.0.1:0', http: true, provider, onError });
  await server.listen();
  return server;
}

const portOf = (server: StatsServer) => (server.address.kind === 'tcp' ? server.address.port : 0);

describe('GET /metrics', () => {
  describe('when the stats server serves a real uWSGI capture', () => {
    for (const name of CAPTURES) {
      it(`should export what uwsgi_exporter exports for ${name}, lint-clean`, async () => {
        const document = capture(name);
        const server = await serveDocument(async () => document);
        try {
          const text = await scrape(portOf(server));
          assertPromtoolClean(text, name);
          assertLikeExporter(text, document, `http://127.0.0.1:${portOf(server)}`, false);
        } finally {
          await server.close();
        }
      });
    }
  });

  describe('when a document has odd sockets, states and label values', () => {
    it('should dedupe sockets, zero unknown states and escape label values, lint-clean', async () => {
      const base = capture('uwsgi-2.0.21-stats-idle.json');
      const document: UwsgiDocument = {
        ...base,
        sockets: [base.sockets[0], { ...base.sockets[0], queue: 99 }, { ...base.sockets[0], name: '/run/app "x"\\y.sock' }],
        workers: base.workers.map((w, i) => ({
          ...w,
          status: (['pause', 'sig9', 'busy', 'cheap'] as const)[i],
          apps: [{ ...w.apps[0], mountpoint: 'a"b\\c\nd', chdir: '/srv/app' }],
        })),
      };
      const server = await serveDocument(async () => document);
      try {
        const text = await scrape(portOf(server));
        assertPromtoolClean(text, 'the odd document');
        assertLikeExporter(text, document, `http://127.0.0.1:${portOf(server)}`, false);
        assert.equal(parseExposition(text).samples.filter((s) => s.name === 'uwsgi_socket_queue_length').length, 2);
      } finally {
        await server.close();
      }
    });
  });

  describe('when the document cannot be built', () => {
    it('should answer uwsgi_up 0 alone and report the failure to onError', async () => {
      const errors: Error[] = [];
      const server = await serveDocument(
        () => Promise.reject(new Error('broken file')),
        (error) => errors.push(error),
      );
      try {
        const text = await scrape(portOf(server));
        assert.equal(text, '# HELP uwsgi_up Whether the uWSGI server is up.\n# TYPE uwsgi_up gauge\nuwsgi_up 0\n');
        assertPromtoolClean(text, 'uwsgi_up 0');
        assert.deepEqual(
          errors.map((e) => e.message),
          ['broken file'],
        );
      } finally {
        await server.close();
      }
    });
  });

  describe('when a path other than /metrics is requested', () => {
    it('should answer /metrics with a query as metrics, and /metrics/ and /metricsx with the JSON', async () => {
      const document = capture('uwsgi-2.0.21-stats-idle.json');
      const server = await serveDocument(async () => document);
      try {
        const port = portOf(server);
        assert.match(await scrape(port, '/metrics?name[]=uwsgi_up'), /^uwsgi_up 1$/m);
        for (const path of ['/metrics/', '/metricsx', '/']) {
          const response = await get(port, path);
          assert.equal(response.headers['content-type'], 'application/json', path);
          assert.deepEqual(JSON.parse(response.body), document, path);
        }
      } finally {
        await server.close();
      }
    });
  });

  describe('when renderPrometheus() is given a Unix socket server', () => {
    it('should label the series with a unix:// stats_uri', () => {
      const text = renderPrometheus(capture('uwsgi-2.0.21-stats-idle.json'), 'unix:///run/app/stats.sock');
      assert.match(text, /^uwsgi_workers\{stats_uri="unix:\/\/\/run\/app\/stats.sock"\} 4$/m);
    });
  });
});

describe('GET /metrics on our own documents', { timeout: 60_000 }, () => {
  const children = new Children();
  const temp = tempDir('wsgi-status-prom-');
  const file = join(temp.dir, 'status.json');
  let appPort = 0;
  let appStatsPort = 0;
  let sidecarPort = 0;
  let prometheus: ChildProcess | null = null;
  let prometheusLog = '';

  before(async () => {
    const app = new LineReader(children.spawnNode(['test/support/processes/prometheus/app.ts', file]));
    const ready = await app.waitForJson<{ port: number; statsPort: number }>('ready');
    appPort = ready.port;
    appStatsPort = ready.statsPort;
    const sidecar = new LineReader(children.spawnNode([CLI, 'serve', file, '--stats', '127.0.0.1:0', '--stats-http']));
    const line = await sidecar.waitFor((l) => l.includes('listening on'));
    sidecarPort = Number(/127\.0\.0\.1:(\d+)/.exec(line)?.[1]);
  });

  after(async () => {
    prometheus?.kill('SIGKILL');
    if (prometheus !== null && prometheus.exitCode === null && prometheus.signalCode === null) {
      await new Promise((resolve) => prometheus?.once('exit', resolve));
    }
    await children.killAll();
    temp.cleanup();
  });

  it('should export what uwsgi_exporter exports for the sidecar document, plus the Node-only families, lint-clean', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get(appPort, '/')).body, 'ok');
    await waitForStatus(file, (d) => d.workers[0]?.requests === 3);
    // The app rewrites the file every 100 ms (rss, heap...): compare a scrape with a document read on both sides of it.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const before = (await get(sidecarPort, '/')).body;
      const text = await scrape(sidecarPort);
      const after = (await get(sidecarPort, '/')).body;
      if (before === after) {
        const document = JSON.parse(before) as UwsgiDocument;
        assert.equal(document.workers.length, 1);
        assertPromtoolClean(text, 'the sidecar');
        assertLikeExporter(text, document, `http://127.0.0.1:${sidecarPort}`, true);
        break;
      }
      assert.ok(Date.now() < deadline, 'the file never stayed still across a scrape');
    }
  });

  it("should be lint-clean from the app's own stats server, busy included", async () => {
    const requests = readStatus(file).workers[0].requests;
    const held = get(appPort, '/hold');
    await waitForStatus(file, (d) => d.workers[0]?.status === 'busy');
    const text = await scrape(appStatsPort);
    assertPromtoolClean(text, "the app's own stats server");
    assert.match(text, new RegExp(`^uwsgi_worker_busy\\{stats_uri="http://127.0.0.1:${appStatsPort}",worker_id="1"\\} 1$`, 'm'));
    assert.match(text, /^uwsgi_worker_requests_in_flight\{[^}]*\} 1$/m);
    await get(appPort, '/release');
    await held;
    await waitForStatus(file, (d) => d.workers[0]?.status === 'idle' && d.workers[0]?.requests === requests + 2);
  });

  it('should be stored by a real Prometheus with the status file values, and busy should flip', { timeout: 40_000 }, async () => {
    const started = Date.now();
    const promPort = await freePort();
    const config = join(temp.dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: sidecar',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${sidecarPort}']`,
        '  - job_name: app',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${appStatsPort}']`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(temp.dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (chunk) => (prometheusLog += chunk));
    prometheus.stderr?.on('data', (chunk) => (prometheusLog += chunk));

    /** The value Prometheus holds for `query` in each job, e.g. {sidecar: 4, app: 4}. */
    const query = async (expression: string): Promise<Record<string, number>> => {
      try {
        const response = await get(promPort, `/api/v1/query?query=${encodeURIComponent(expression)}`);
        const data = JSON.parse(response.body) as {
          data?: { result?: Array<{ metric: Record<string, string>; value: [number, string] }> };
        };
        return Object.fromEntries((data.data?.result ?? []).map((r) => [r.metric.job, Number(r.value[1])]));
      } catch {
        return {}; // not up yet
      }
    };
    const waitFor = async (expression: string, want: number, what: string) => {
      const deadline = started + 35_000;
      let last: Record<string, number> = {};
      while (Date.now() < deadline) {
        last = await query(expression);
        if (last.sidecar === want && last.app === want) return;
        assert.equal(prometheus?.exitCode, null, `prometheus exited: ${prometheusLog}`);
        await sleep(250);
      }
      assert.fail(`${what}: wanted ${want} in both jobs, Prometheus holds ${JSON.stringify(last)}; log: ${prometheusLog}`);
    };

    const requests = readStatus(file).workers[0].requests;
    await waitFor('uwsgi_worker_requests_total{worker_id="1"}', requests, 'requests from the status file');

    const held = get(appPort, '/hold');
    await waitForStatus(file, (d) => d.workers[0]?.status === 'busy');
    await waitFor('uwsgi_worker_busy{worker_id="1"}', 1, 'busy while a request is held');
    await get(appPort, '/release');
    await held;
    const document = await waitForStatus(file, (d) => d.workers[0]?.status === 'idle' && d.workers[0]?.requests === requests + 2);
    await waitFor('uwsgi_worker_busy{worker_id="1"}', 0, 'idle once it is answered');
    await waitFor('uwsgi_worker_requests_total{worker_id="1"}', document.workers[0].requests, 'requests after the hold');
    await waitFor('uwsgi_up', 1, 'uwsgi_up');
  });
});

describe('examples/monitoring/prometheus.yml', () => {
  it('should be a configuration promtool accepts', () => {
    const file = new URL('../examples/monitoring/prometheus.yml', import.meta.url).pathname;
    const run = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /SUCCESS/);
  });
});

describe('collectUwsgiMetrics(options)', () => {
  describe('when given bad options', () => {
    it('should throw a TypeError naming the option', () => {
      assert.throws(() => collectUwsgiMetrics({ path: '' }), { name: 'TypeError', message: /option "path"/ });
      assert.throws(() => collectUwsgiMetrics({ path: '/tmp/x.json', register: {} as never }), {
        name: 'TypeError',
        message: /option "register"/,
      });
      assert.throws(() => collectUwsgiMetrics({ path: '/tmp/x.json', onError: 1 as never }), {
        name: 'TypeError',
        message: /option "onError"/,
      });
    });
  });

  describe('when reading a status file', () => {
    it('should register the same families and values as /metrics, lint-clean, and remove them again', async () => {
      const { Registry } = await import('prom-client');
      const temp = tempDir('wsgi-status-prom-');
      try {
        const path = join(temp.dir, 'status.json');
        // A document of this library's with live pids (this process), so the provider keeps its workers.
        const document = capture('uwsgi-2.0.21-stats-busy.json');
        const workers = document.workers.map((w) => ({
          ...w,
          pid: process.pid,
          in_flight: w.status === 'busy' ? 1 : 0,
          event_loop_utilization: 250,
          event_loop_delay: 1500,
          heap_used: 12_345_678,
          last_update: Date.now(),
        }));
        writeFileSync(path, JSON.stringify({ ...document, sockets: [], workers }));
        const registry = new Registry();
        const errors: Error[] = [];
        const remove = collectUwsgiMetrics({ path, register: registry, onError: (error) => errors.push(error) });
        assert.throws(() => collectUwsgiMetrics({ path, register: registry }), /already has a metric named uwsgi_/);
        const text = await registry.metrics();
        assertPromtoolClean(text, 'the prom-client registry');
        const served = renderPrometheus({ ...document, sockets: [], workers }, `file://${path}`);
        assert.deepEqual(listing(parseExposition(text).samples), listing(parseExposition(served).samples));
        assertLikeExporter(text, { ...document, sockets: [], workers }, `file://${path}`, true);

        writeFileSync(path, '{ not json');
        assert.match(await registry.metrics(), /^uwsgi_up 0$/m);
        await registry.metrics();
        assert.equal(errors.length, 1, 'once per episode');
        remove();
        assert.equal(registry.getMetricsAsArray().length, 0);
      } finally {
        temp.cleanup();
      }
    });
  });

  describe('when 4 node:cluster workers of an Express app each serve prom-client /metrics', { timeout: 60_000 }, () => {
    const children = new Children();
    const temp = tempDir('wsgi-status-prom-');
    after(async () => {
      await children.killAll();
      temp.cleanup();
    });

    it('should show all 4 worker_id series from any worker, summing to the responses received', async () => {
      const file = join(temp.dir, 'status.json');
      const primary = new LineReader(children.spawnNode(['test/support/processes/prometheus/express-cluster.ts', file]));
      const { port, pids } = await primary.waitForJson<{ port: number; pids: number[] }>('ready', 30_000);
      await waitForStatus(file, (d) => d.workers.length === 4, 10_000);
      let responses = 0;
      for (let round = 0; round < 10; round++) {
        const answers = await Promise.all(Array.from({ length: 8 }, () => get(port, '/')));
        for (const answer of answers) assert.equal(answer.body, 'ok');
        responses += answers.length;
      }
      // Each scrape is a request too: it is counted once its worker writes the file (every 100 ms).
      const agreed = new Set<string>();
      const deadline = Date.now() + 20_000;
      let last = '';
      while (agreed.size < 4) {
        assert.ok(Date.now() < deadline, `not every worker agreed with ${responses} responses; last scrape: ${last}`);
        await sleep(300);
        const answer = await get(port, '/metrics');
        responses++;
        last = answer.body;
        const series = parseExposition(answer.body).samples.filter((s) => s.name === 'uwsgi_worker_requests_total');
        const sum = series.reduce((total, s) => total + s.value, 0);
        const ids = series.map((s) => s.labels.worker_id).sort();
        if (sum === responses - 1 && ids.join() === '1,2,3,4') agreed.add(String(answer.headers['x-pid']));
      }
      assert.deepEqual([...agreed].map(Number).sort(), [...pids].sort());
      assertPromtoolClean(last, "a cluster worker's prom-client /metrics");
    });
  });
});
