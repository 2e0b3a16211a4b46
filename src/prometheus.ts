/**
 * `wsgi-status/prometheus`: the `/metrics` families on a prom-client
 * `Registry`, for apps that already serve prom-client's `/metrics`.
 *
 * Every scrape reads the shared status file, so each worker's `/metrics`
 * shows the whole cluster (every `worker_id`), with no IPC primary: it works
 * the same under node:cluster, PM2 and independent processes. prom-client's
 * own cluster mode needs a primary to aggregate over IPC, which PM2 does not
 * provide (siimon/prom-client#165, #239).
 */
import { Counter, register as defaultRegister, Gauge, type Registry } from 'prom-client';
import type { UwsgiDocument } from './model/document.js';
import { resolveStatusPath } from './options.js';
import { METRIC_FAMILIES, type MetricFamily, type ScrapeView, scrapeView } from './server/prometheus.js';
import { createStatusFileProvider } from './server/providers.js';
import { VERSION } from './version.js';

/** How {@link collectUwsgiMetrics} reads the status file and where it registers. */
export interface UwsgiMetricsOptions {
  /** The status file the app's workers write: the same path given to `wsgiStatus()` / `instrument()`. */
  path: string;
  /**
   * The registry to register the families on.
   * @default prom-client's global `register`
   */
  register?: Registry;
  /**
   * The `stats_uri` label of every series.
   * @default `file://` + the absolute path (what uwsgi_exporter's `--stats.uri` would be for the file)
   */
  statsUri?: string;
  /**
   * Called when a scrape cannot read the status file (the scrape then shows
   * `uwsgi_up 0`), once until a read succeeds again.
   */
  onError?: (error: Error) => void;
}

/**
 * Registers uwsgi_exporter's metric families (and the Node-only ones) on a
 * prom-client registry, read from the status file at scrape time. Returns a
 * function that removes them again. Throws a TypeError for a bad option,
 * and an Error when the registry already holds one of the names.
 *
 * @example
 * import { Registry } from 'prom-client';
 * import { collectUwsgiMetrics } from 'wsgi-status/prometheus';
 * const registry = new Registry();
 * collectUwsgiMetrics({ path: '/dev/shm/myapp/status.json', register: registry });
 * app.get('/metrics', async (_req, res) => {
 *   res.type(registry.contentType).send(await registry.metrics());
 * });
 */
export function collectUwsgiMetrics(options: UwsgiMetricsOptions): () => void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('wsgi-status: collectUwsgiMetrics() takes an options object with "path"');
  }
  const path = resolveStatusPath(options.path, 'path');
  const registry = options.register ?? defaultRegister;
  if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function') {
    throw new TypeError('wsgi-status: option "register" must be a prom-client Registry');
  }
  const statsUri = options.statsUri ?? `file://${path}`;
  if (typeof statsUri !== 'string') throw new TypeError('wsgi-status: option "statsUri" must be a string');
  const onError = options.onError;
  if (onError !== undefined && typeof onError !== 'function') {
    throw new TypeError('wsgi-status: option "onError" must be a function');
  }
  for (const family of METRIC_FAMILIES) {
    if (registry.getSingleMetric(family.name) !== undefined) {
      throw new Error(
        `wsgi-status: the registry already has a metric named ${family.name} (call collectUwsgiMetrics once per registry)`,
      );
    }
  }

  const provider = createStatusFileProvider({
    path,
    // The families read no identity field; the file's own is used when it has one.
    identity: (fromFile) =>
      fromFile ?? {
        version: `wsgi-status/${VERSION}`,
        pid: process.pid,
        uid: process.getuid?.() ?? 0,
        gid: process.getgid?.() ?? 0,
        cwd: process.cwd(),
      },
  });
  let failing = false;
  const read = async (): Promise<ScrapeView> => {
    let document: UwsgiDocument | null = null;
    try {
      document = await provider();
      failing = false;
    } catch (error) {
      if (!failing) {
        failing = true;
        try {
          onError?.(error instanceof Error ? error : new Error(String(error)));
        } catch {
          // A throwing onError must not fail the scrape.
        }
      }
    }
    return scrapeView(document);
  };
  // prom-client calls every metric's collect() in the same tick (Promise.all in
  // Registry.metrics()), so sharing the pending read makes a scrape one read of the file.
  let pending: Promise<ScrapeView> | null = null;
  const view = (): Promise<ScrapeView> => {
    pending ??= read().finally(() => {
      pending = null;
    });
    return pending;
  };

  const names: string[] = [];
  for (const family of METRIC_FAMILIES) {
    register(family, registry, statsUri, view);
    names.push(family.name);
  }
  return () => {
    for (const name of names) registry.removeSingleMetric(name);
  };
}

function register(family: MetricFamily, registry: Registry, statsUri: string, view: () => Promise<ScrapeView>): void {
  const labelNames = family.statsUri ? ['stats_uri', ...family.labels] : [...family.labels];
  const labelsOf = (values: readonly string[]): Record<string, string> => {
    const labels: Record<string, string> = family.statsUri ? { stats_uri: statsUri } : {};
    family.labels.forEach((name, i) => {
      labels[name] = values[i];
    });
    return labels;
  };
  const config = { name: family.name, help: family.help, labelNames, registers: [registry] };
  if (family.type === 'counter') {
    new Counter({
      ...config,
      async collect() {
        const current = await view();
        // Absolute values from the file: start from zero, so workers that are gone drop out.
        this.reset();
        family.collect(current, (values, value) => this.inc(labelsOf(values), value));
      },
    });
  } else {
    new Gauge({
      ...config,
      async collect() {
        const current = await view();
        this.reset();
        family.collect(current, (values, value) => this.set(labelsOf(values), value));
      },
    });
  }
}
