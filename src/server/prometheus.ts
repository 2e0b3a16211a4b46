/**
 * `GET /metrics`: the document in the Prometheus text exposition format
 * 0.0.4, with the metric names, types, help texts, labels and units of
 * timonwong/uwsgi_exporter (`pkg/collector/exporter.go`), so its Grafana
 * dashboards and alert rules work unchanged on a fleet of Node apps.
 *
 * {@link METRIC_FAMILIES} is the one list of families: the text renderer
 * here and the prom-client bridge (`wsgi-status/prometheus`) both read it.
 *
 * What the exporter does and this file follows:
 * - every series carries the const label `stats_uri` (the URI the exporter
 *   was pointed at), except `uwsgi_up`, which has no label at all;
 * - workers with `id` 0 (uWSGI's cheaped "stand-by" rows) are left out, also
 *   from `uwsgi_workers`;
 * - sockets with the same `name` and `proto` are listed once, the first
 *   wins (its workaround for uWSGI listing a socket twice, issue #22 there);
 * - microseconds (`running_time`, `avg_rt`) are divided by 1e6; the worker
 *   states busy/idle/cheap are 0/1 gauges, anything else (pause, sigN) is 0
 *   in all three;
 * - per-app series (`uwsgi_worker_app_*`) are always exported; per-core ones
 *   are not (the exporter's `--collect.cores` is off by default);
 * - when the document cannot be read, only `uwsgi_up 0` is exported.
 * The exporter's own telemetry (`uwsgi_exporter_*`, `go_*`, `process_*`)
 * describes the exporter process and has no counterpart here.
 */
import type { UwsgiDocument, UwsgiSocket, UwsgiWorker } from '../model/document.js';
import type { HttpRoute } from './routes.js';

/** The `Content-Type` of the text exposition format 0.0.4 (what prom-client and client_golang send). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What one scrape sees: the document with the exporter's filters applied once. */
export interface ScrapeView {
  /** `false` when the document could not be read: then only `uwsgi_up` has a sample. */
  up: boolean;
  document: UwsgiDocument | null;
  /** Workers with an id other than 0. */
  workers: UwsgiWorker[];
  /** Sockets, one per `name` + `proto`. */
  sockets: UwsgiSocket[];
}

/** Receives one sample: label values in the order of the family's `labels`, and the value. */
export type SampleSink = (labelValues: readonly string[], value: number) => void;

/** One metric family: its name, type, help text, labels and how to read its samples off a scrape. */
export interface MetricFamily {
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  /** Label names other than `stats_uri`. */
  readonly labels: readonly string[];
  /** Whether the series carry `stats_uri` (all but `uwsgi_up`). */
  readonly statsUri: boolean;
  /** Calls `emit` once per sample of this scrape. */
  collect(view: ScrapeView, emit: SampleSink): void;
}

/** The filtered view the families read, built once per scrape. `null` means the read failed. */
export function scrapeView(document: UwsgiDocument | null): ScrapeView {
  if (document === null) return { up: false, document: null, workers: [], sockets: [] };
  const workers = (document.workers ?? []).filter((worker) => worker.id !== 0);
  const seen = new Set<string>();
  const sockets: UwsgiSocket[] = [];
  for (const socket of document.sockets ?? []) {
    const key = `${socket.proto}\0${socket.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    sockets.push(socket);
  }
  return { up: true, document, workers, sockets };
}

// The exporter decodes into Go integers: a field that is missing reads as 0.
function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

const US_PER_SECOND = 1e6;

function main(name: string, help: string, value: (document: UwsgiDocument, view: ScrapeView) => number): MetricFamily {
  return {
    name: `uwsgi_${name}`,
    type: 'gauge',
    help,
    labels: [],
    statsUri: true,
    collect: (view, emit) => {
      if (view.document !== null) emit([], value(view.document, view));
    },
  };
}

function socket(name: string, help: string, value: (socket: UwsgiSocket) => unknown): MetricFamily {
  return {
    name: `uwsgi_socket_${name}`,
    type: 'gauge',
    help,
    labels: ['name', 'proto'],
    statsUri: true,
    collect: (view, emit) => {
      for (const s of view.sockets) emit([String(s.name), String(s.proto)], num(value(s)));
    },
  };
}

/**
 * A per-worker family. A `value` that returns `undefined` leaves the worker
 * out: the Node-only fields are absent from a uWSGI document.
 */
function worker(
  name: string,
  type: 'gauge' | 'counter',
  help: string,
  value: (worker: UwsgiWorker) => number | undefined,
): MetricFamily {
  return {
    name: `uwsgi_worker_${name}`,
    type,
    help,
    labels: ['worker_id'],
    statsUri: true,
    collect: (view, emit) => {
      for (const w of view.workers) {
        const v = value(w);
        if (v !== undefined) emit([String(w.id)], v);
      }
    },
  };
}

function app(
  name: string,
  type: 'gauge' | 'counter',
  help: string,
  value: (app: UwsgiWorker['apps'][number]) => unknown,
): MetricFamily {
  return {
    name: `uwsgi_worker_app_${name}`,
    type,
    help,
    labels: ['worker_id', 'app_id', 'mountpoint', 'chdir'],
    statsUri: true,
    collect: (view, emit) => {
      for (const w of view.workers) {
        for (const a of w.apps ?? []) {
          emit([String(w.id), String(num(a.id)), String(a.mountpoint ?? ''), String(a.chdir ?? '')], num(value(a)));
        }
      }
    },
  };
}

const state = (status: string) => (w: UwsgiWorker) => (w.status === status ? 1 : 0);
const micros = (value: unknown) => num(value) / US_PER_SECOND;
// Node-only fields: present in this library's documents, absent from uWSGI's.
const nodeOnly = (value: unknown, scale = 1) => (typeof value === 'number' && Number.isFinite(value) ? value / scale : undefined);
const NODE = '(wsgi-status, Node.js only)';

// Help texts are the exporter's, word for word ("Is core in busy?" included): dashboards show them.
const FAMILIES: MetricFamily[] = [
  main('listen_queue_length', 'Length of listen queue.', (d) => num(d.listen_queue)),
  main('listen_queue_errors', 'Number of listen queue errors.', (d) => num(d.listen_queue_errors)),
  main('signal_queue_length', 'Length of signal queue.', (d) => num(d.signal_queue)),
  main('workers', 'Number of workers.', (_d, view) => view.workers.length),

  socket('queue_length', 'Length of socket queue.', (s) => s.queue),
  socket('max_queue_length', 'Max length of socket queue.', (s) => s.max_queue),
  socket('shared', 'Is shared socket?', (s) => s.shared),
  socket('can_offload', 'Can socket offload?', (s) => s.can_offload),

  worker('accepting', 'gauge', 'Is this worker accepting requests?', (w) => num(w.accepting)),
  worker('delta_requests', 'gauge', 'Number of delta requests', (w) => num(w.delta_requests)),
  worker('signal_queue_length', 'gauge', 'Length of signal queue.', (w) => num(w.signal_queue)),
  worker('rss_bytes', 'gauge', 'Worker RSS bytes.', (w) => num(w.rss)),
  worker('vsz_bytes', 'gauge', 'Worker VSZ bytes.', (w) => num(w.vsz)),
  worker('running_time_seconds', 'gauge', 'Worker running time in seconds.', (w) => micros(w.running_time)),
  worker('last_spawn_time_seconds', 'gauge', 'Last spawn time in seconds since epoch.', (w) => num(w.last_spawn)),
  worker('average_response_time_seconds', 'gauge', 'Average response time in seconds.', (w) => micros(w.avg_rt)),
  worker('busy', 'gauge', 'Is core in busy?', state('busy')),
  worker('idle', 'gauge', 'Is core in idle?', state('idle')),
  worker('cheap', 'gauge', 'Is core in cheap mode?', state('cheap')),
  worker('requests_total', 'counter', 'Total number of requests.', (w) => num(w.requests)),
  worker('exceptions_total', 'counter', 'Total number of exceptions.', (w) => num(w.exceptions)),
  worker('harakiri_count_total', 'counter', 'Total number of harakiri count.', (w) => num(w.harakiri_count)),
  worker('signals_total', 'counter', 'Total number of signals.', (w) => num(w.signals)),
  worker('respawn_count_total', 'counter', 'Total number of respawn count.', (w) => num(w.respawn_count)),
  worker('transmitted_bytes_total', 'counter', 'Worker transmitted bytes.', (w) => num(w.tx)),
  worker('apps', 'gauge', 'Number of apps.', (w) => (Array.isArray(w.apps) ? w.apps.length : 0)),
  worker('cores', 'gauge', 'Number of cores.', (w) => (Array.isArray(w.cores) ? w.cores.length : 0)),

  app('startup_time_seconds', 'gauge', 'How long this app took to start.', (a) => a.startup_time),
  app('requests_total', 'counter', 'Total number of requests.', (a) => a.requests),
  app('exceptions_total', 'counter', 'Total number of exceptions.', (a) => a.exceptions),

  worker('requests_in_flight', 'gauge', `Requests in flight in this worker now ${NODE}.`, (w) => nodeOnly(w.in_flight)),
  worker(
    'event_loop_utilization_ratio',
    'gauge',
    `Share of the last interval the event loop was busy, 0 to 1 ${NODE}.`,
    // The document holds per mille.
    (w) => nodeOnly(w.event_loop_utilization, 1000),
  ),
  worker('event_loop_delay_seconds', 'gauge', `Mean event-loop delay over the last interval in seconds ${NODE}.`, (w) =>
    nodeOnly(w.event_loop_delay, US_PER_SECOND),
  ),
  worker('heap_used_bytes', 'gauge', `V8 heap in use in bytes ${NODE}.`, (w) => nodeOnly(w.heap_used)),

  {
    name: 'uwsgi_up',
    type: 'gauge',
    help: 'Whether the uWSGI server is up.',
    labels: [],
    statsUri: false,
    collect: (view, emit) => emit([], view.up ? 1 : 0),
  },
];

/**
 * Every family `/metrics` and the prom-client bridge export, sorted by name
 * (the order client_golang's registry gathers them in).
 */
export const METRIC_FAMILIES: readonly MetricFamily[] = FAMILIES.sort((a, b) => (a.name < b.name ? -1 : 1));

/**
 * The `stats_uri` an exporter user would have configured for a stats server
 * (`--stats.uri`): `http://HOST:PORT` for TCP (only the HTTP form serves
 * `/metrics`), `unix://PATH` for a socket path.
 */
export function statsUriOf(server: string): string {
  return server.startsWith('/') ? `unix://${server}` : `http://${server}`;
}

function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function escapeHelp(value: string): string {
  return value.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

interface Prepared {
  family: MetricFamily;
  head: string;
  /** Label names in output order (sorted, as client_golang writes them); index -1 stands for `stats_uri`. */
  order: Array<{ name: string; index: number }>;
}

// Worked out once: the HELP/TYPE head and the label order of each family.
const PREPARED: readonly Prepared[] = METRIC_FAMILIES.map((family) => {
  const order = family.labels.map((name, index) => ({ name, index }));
  if (family.statsUri) order.push({ name: 'stats_uri', index: -1 });
  order.sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    family,
    head: `# HELP ${family.name} ${escapeHelp(family.help)}\n# TYPE ${family.name} ${family.type}\n`,
    order,
  };
});

/**
 * Renders a document (or `null`: it could not be read) as the text
 * exposition format 0.0.4. A family without samples is left out, as
 * client_golang leaves it out. Pure.
 */
export function renderPrometheus(document: UwsgiDocument | null, statsUri: string): string {
  const view = scrapeView(document);
  const uri = escapeLabel(statsUri);
  let out = '';
  for (const { family, head, order } of PREPARED) {
    let lines = '';
    family.collect(view, (values, value) => {
      let labels = '';
      for (const { name, index } of order) {
        const text = index === -1 ? uri : escapeLabel(values[index] ?? '');
        labels += `${labels === '' ? '' : ','}${name}="${text}"`;
      }
      lines += `${family.name}${labels === '' ? '' : `{${labels}}`} ${formatValue(value)}\n`;
    });
    if (lines !== '') out += head + lines;
  }
  return out;
}

/**
 * The `/metrics` route of the HTTP stats server. A document that cannot be
 * built answers `uwsgi_up 0` (as the exporter does when its read fails)
 * rather than an error, and the failure goes to the server's `onError`.
 */
export const PROMETHEUS_ROUTE: HttpRoute = {
  contentType: PROMETHEUS_CONTENT_TYPE,
  async body(context) {
    let document: UwsgiDocument | null = null;
    try {
      document = await context.document();
    } catch (error) {
      context.report?.(error);
    }
    return renderPrometheus(document, statsUriOf(context.server));
  },
};
