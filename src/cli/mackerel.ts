/**
 * `wsgi-status mackerel`: a Mackerel agent plugin that prints what
 * mackerel-plugin-uwsgi-vassal prints (mackerelio/mackerel-agent-plugins),
 * so dashboards built on it keep working: the same metric names
 * (`<prefix>.<prefix>.workers.{busy,idle,cheap,pause}`,
 * `<prefix>.<prefix>.req.requests`), the same graph definitions, and the same
 * go-mackerel-plugin rules for the per-minute request rate (a state file, no
 * value on the first run, none after a counter reset or a gap over 600 s,
 * nothing at all when the state is under a second old). Extra graphs follow
 * for the listen queue and Node's own figures, unless `--vassal-only`.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inFlightOf, type UwsgiDocument } from '../model/document.js';
import { type CliContext, CliError, integerOption, parseCommand } from './common.js';
import { loadDocument, resolveSource } from './source.js';

export const MACKEREL_HELP = `Usage: wsgi-status mackerel <file|address> [--metric-key-prefix uWSGI] [--tempfile path]

A Mackerel agent plugin. Prints "name<TAB>value<TAB>epoch" lines, or the graph
definitions when MACKEREL_AGENT_PLUGIN_META is set, with the same metric names
as mackerel-plugin-uwsgi-vassal plus extra graphs (listen queue, in-flight
requests, response time, exceptions, Node memory and event loop).

  <file|address>            a status file, a stats socket path, unix://PATH,
                            tcp://HOST:PORT, HOST:PORT or http://HOST:PORT
  --socket address          the same, as mackerel-plugin-uwsgi-vassal spells it
  --metric-key-prefix name  metric key prefix (default uWSGI)
  --tempfile path           where the request counter is kept between runs
                            (default: $MACKEREL_PLUGIN_WORKDIR or the temp dir,
                            mackerel-plugin-wsgi-status-<prefix>-<hash>)
  --vassal-only             only the graphs mackerel-plugin-uwsgi-vassal has
  --timeout ms              how long to wait for a stats server (default 5000)
  -h, --help                this help

mackerel-agent.conf:
  [plugin.metrics.uwsgi]
  command = ["wsgi-status", "mackerel", "unix:///run/app/stats.sock"]
`;

/** One metric of a graph, as go-mackerel-plugin defines it. */
interface MetricDefinition {
  name: string;
  label: string;
  /** Printed as a per-minute rate of change (go-mackerel-plugin's `Diff`). */
  diff?: boolean;
  stacked?: boolean;
}

interface GraphDefinition {
  /** The key after the prefix: the graph is `<prefix>.<key>`. */
  key: string;
  label: string;
  unit: 'integer' | 'float' | 'percentage' | 'milliseconds' | 'bytes';
  metrics: MetricDefinition[];
  /** Not part of mackerel-plugin-uwsgi-vassal. */
  extra?: boolean;
}

const GRAPHS: GraphDefinition[] = [
  {
    key: 'workers',
    label: 'Workers',
    unit: 'integer',
    metrics: [
      { name: 'busy', label: 'Busy', stacked: true },
      { name: 'idle', label: 'Idle', stacked: true },
      { name: 'cheap', label: 'Cheap', stacked: true },
      { name: 'pause', label: 'Pause', stacked: true },
    ],
  },
  { key: 'req', label: 'Requests', unit: 'float', metrics: [{ name: 'requests', label: 'Requests', diff: true }] },
  {
    key: 'listen_queue',
    label: 'Listen Queue',
    unit: 'integer',
    metrics: [{ name: 'listen_queue', label: 'Waiting to be accepted' }],
    extra: true,
  },
  {
    key: 'in_flight',
    label: 'In-flight Requests',
    unit: 'integer',
    metrics: [{ name: 'in_flight', label: 'In flight' }],
    extra: true,
  },
  {
    key: 'exceptions',
    label: 'Exceptions',
    unit: 'float',
    metrics: [{ name: 'exceptions', label: 'Exceptions', diff: true }],
    extra: true,
  },
  {
    key: 'response_time',
    label: 'Response Time',
    unit: 'milliseconds',
    metrics: [
      { name: 'avg_rt_avg', label: 'Average' },
      { name: 'avg_rt_max', label: 'Slowest worker' },
    ],
    extra: true,
  },
  {
    key: 'node_memory',
    label: 'Node Memory',
    unit: 'bytes',
    metrics: [
      { name: 'rss', label: 'RSS' },
      { name: 'heap_used', label: 'V8 heap used' },
    ],
    extra: true,
  },
  {
    key: 'node_event_loop_utilization',
    label: 'Node Event Loop Utilization',
    unit: 'percentage',
    metrics: [
      { name: 'elu_avg', label: 'Average' },
      { name: 'elu_max', label: 'Busiest worker' },
    ],
    extra: true,
  },
  {
    key: 'node_event_loop_delay',
    label: 'Node Event Loop Delay',
    unit: 'milliseconds',
    metrics: [
      { name: 'eld_avg', label: 'Average' },
      { name: 'eld_max', label: 'Worst worker' },
    ],
    extra: true,
  },
];

/** Go's `strings.Title`, which the vassal plugin applies to the prefix for labels ("uWSGI" becomes "UWSGI"). */
function title(text: string): string {
  return text.replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_, before: string, letter: string) => before + letter.toUpperCase());
}

/** The graph definitions, as go-mackerel-plugin prints them under MACKEREL_AGENT_PLUGIN_META. */
export function graphDefinitions(prefix: string, vassalOnly: boolean): string {
  const graphs: Record<
    string,
    { label: string; unit: string; metrics: Array<{ name: string; label: string; stacked: boolean }> }
  > = {};
  // Go marshals a map with its keys sorted.
  const selected = GRAPHS.filter((g) => !vassalOnly || !g.extra)
    .map((g) => ({ ...g, full: `${prefix}.${prefix}.${g.key}` }))
    .sort((a, b) => (a.full < b.full ? -1 : a.full > b.full ? 1 : 0));
  for (const graph of selected) {
    graphs[graph.full] = {
      label: `${title(prefix)} ${graph.label}`,
      unit: graph.unit,
      metrics: graph.metrics.map((m) => ({ name: m.name, label: m.label, stacked: m.stacked === true })),
    };
  }
  return `# mackerel-agent-plugin\n${JSON.stringify({ graphs })}\n`;
}

/** The raw figures of one document, by metric name (before rates). */
export function collectMetrics(document: UwsgiDocument): Map<string, number> {
  const values = new Map<string, number>();
  const workers = document.workers ?? [];
  // The vassal plugin counts only these four states and sums `requests`.
  for (const status of ['busy', 'idle', 'cheap', 'pause']) values.set(status, workers.filter((w) => w.status === status).length);
  values.set(
    'requests',
    workers.reduce((sum, w) => sum + (Number(w.requests) || 0), 0),
  );
  values.set('listen_queue', Number(document.listen_queue) || 0);
  values.set(
    'in_flight',
    workers.reduce((sum, w) => sum + inFlightOf(w), 0),
  );
  values.set(
    'exceptions',
    workers.reduce((sum, w) => sum + (Number(w.exceptions) || 0), 0),
  );
  const rts = workers.map((w) => (Number(w.avg_rt) || 0) / 1000);
  values.set('avg_rt_avg', rts.length ? rts.reduce((a, b) => a + b, 0) / rts.length : 0);
  values.set('avg_rt_max', rts.length ? Math.max(...rts) : 0);
  values.set(
    'rss',
    workers.reduce((sum, w) => sum + (Number(w.rss) || 0), 0),
  );
  // Node-only fields: absent from a real uWSGI's document, and then not printed at all.
  const node = workers.filter((w) => typeof w.event_loop_utilization === 'number');
  if (node.length > 0) {
    values.set(
      'heap_used',
      node.reduce((sum, w) => sum + (Number(w.heap_used) || 0), 0),
    );
    const elu = node.map((w) => w.event_loop_utilization / 10);
    const eld = node.map((w) => (Number(w.event_loop_delay) || 0) / 1000);
    values.set('elu_avg', elu.reduce((a, b) => a + b, 0) / elu.length);
    values.set('elu_max', Math.max(...elu));
    values.set('eld_avg', eld.reduce((a, b) => a + b, 0) / eld.length);
    values.set('eld_max', Math.max(...eld));
  }
  return values;
}

/** What a previous run left: its values and when it ran (epoch seconds). */
interface State {
  values: Record<string, number>;
  lastTime: number;
}

async function readState(path: string): Promise<State | null> {
  try {
    const data = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    const values: Record<string, number> = {};
    for (const [key, value] of Object.entries(data)) if (typeof value === 'number') values[key] = value;
    return typeof data._lastTime === 'number' ? { values, lastTime: data._lastTime } : null;
  } catch {
    // Missing or unreadable: this run is a first run.
    return null;
  }
}

async function writeState(path: string, values: Record<string, number>): Promise<void> {
  // Renamed into place, so a run that overlaps this one never reads half a file.
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(values)}\n`);
  await rename(temporary, path);
}

/** go-mackerel-plugin's default state file: per prefix and per command line. */
export function defaultStatePath(prefix: string, args: string[], env: NodeJS.ProcessEnv): string {
  const hash = createHash('sha1').update(args.join(' ')).digest('hex');
  const safe = prefix.replace(/[^A-Za-z0-9_.-]/g, '_');
  return join(env.MACKEREL_PLUGIN_WORKDIR || tmpdir(), `mackerel-plugin-wsgi-status-${safe}-${hash}`);
}

/**
 * The value lines for `values` at `nowMs`, given the previous run's state;
 * returns the lines, the state to save, and notes for stderr. Pure.
 */
export function formatValues(
  prefix: string,
  vassalOnly: boolean,
  values: ReadonlyMap<string, number>,
  last: State | null,
  nowMs: number,
): { lines: string[]; state: Record<string, number> | null; notes: string[] } {
  const epoch = Math.floor(nowMs / 1000);
  const notes: string[] = [];
  // go-mackerel-plugin prints nothing (and keeps the state) when it ran less than a second ago.
  if (last !== null && nowMs - last.lastTime * 1000 < 1000) {
    return { lines: [], state: null, notes: ['state was recently updated; nothing printed'] };
  }
  const state: Record<string, number> = {};
  for (const [name, value] of values) state[name] = value;
  const lines: string[] = [];
  for (const graph of GRAPHS) {
    if (vassalOnly && graph.extra) continue;
    for (const metric of graph.metrics) {
      let value = values.get(metric.name);
      if (value === undefined) continue;
      if (metric.diff) {
        const previous = last?.values[metric.name];
        if (last === null || previous === undefined) {
          notes.push(`${metric.name} does not exist at last fetch`);
          continue;
        }
        const seconds = epoch - last.lastTime;
        if (seconds > 600) {
          notes.push(`${metric.name}: too long duration since the last run`);
          continue;
        }
        if (previous > value) {
          notes.push(`${metric.name}: counter seems to be reset`);
          continue;
        }
        value = ((value - previous) * 60) / seconds;
        state[`.last_diff.${metric.name}`] = value;
      }
      // Go's %f: six decimals.
      lines.push(`${prefix}.${prefix}.${graph.key}.${metric.name}\t${value.toFixed(6)}\t${epoch}`);
    }
  }
  state._lastTime = epoch;
  return { lines, state, notes };
}

export async function mackerel(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parseCommand('mackerel', args, {
    socket: { type: 'string' },
    'metric-key-prefix': { type: 'string' },
    tempfile: { type: 'string' },
    'vassal-only': { type: 'boolean' },
    timeout: { type: 'string' },
  });
  if (values.help) {
    context.stdout.write(MACKEREL_HELP);
    return 0;
  }
  const prefix = typeof values['metric-key-prefix'] === 'string' ? values['metric-key-prefix'] : 'uWSGI';
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) {
    throw new CliError(
      `mackerel: --metric-key-prefix may hold only letters, digits, "_" and "-", got ${JSON.stringify(prefix)}`,
      2,
    );
  }
  const vassalOnly = values['vassal-only'] === true;
  // Like every go-mackerel-plugin, the meta run prints definitions and reads nothing.
  if (context.env.MACKEREL_AGENT_PLUGIN_META) {
    context.stdout.write(graphDefinitions(prefix, vassalOnly));
    return 0;
  }
  const targets = [...positionals, ...(typeof values.socket === 'string' ? [values.socket] : [])];
  if (targets.length !== 1) {
    throw new CliError(
      targets.length === 0
        ? 'mackerel: missing the status file or stats address (see wsgi-status mackerel --help)'
        : 'mackerel: give one status file or stats address',
      2,
    );
  }
  const timeout = integerOption('mackerel', 'timeout', values.timeout as string | undefined, 5000, 1, 600_000);
  const document = await loadDocument(await resolveSource(targets[0]), timeout, (message) =>
    context.stderr.write(`wsgi-status: mackerel: ${message}\n`),
  );
  const statePath = typeof values.tempfile === 'string' ? values.tempfile : defaultStatePath(prefix, args, context.env);
  const result = formatValues(prefix, vassalOnly, collectMetrics(document), await readState(statePath), Date.now());
  if (result.lines.length > 0) context.stdout.write(`${result.lines.join('\n')}\n`);
  for (const note of result.notes) context.stderr.write(`wsgi-status: mackerel: ${note}\n`);
  if (result.state) {
    await writeState(statePath, result.state).catch((error: NodeJS.ErrnoException) => {
      throw new CliError(`mackerel: cannot save the state file ${statePath}: ${error.code ?? error.message}`);
    });
  }
  return 0;
}
