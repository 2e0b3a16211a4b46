/**
 * The `stats` option: a uWSGI-compatible stats server inside the app. Each
 * client gets the status file as it is now (rows recomputed from its
 * ledger) and the listen queues measured at that moment.
 *
 * The address is served while any process of the app runs: a process whose
 * listen fails (EADDRINUSE: another independent process, or another PM2
 * fork-mode instance, serves it) tries again every interval, so when the
 * holder stops, another takes the address over within one interval. A unix
 * socket file is removed first only when a probe finds nobody listening
 * (server/unix-socket.ts, under a lock). A listen failure is
 * reported once per episode; the app keeps serving.
 */
import type { ResolvedOptions } from '../options.js';
import { coalesce, createStatusFileProvider } from '../server/providers.js';
import { StatsServer } from '../server/stats-server.js';
import type { Reporter } from './reporter.js';
import type { SlotWriter } from './slot-writer.js';

/** A running stats server and its listen retries. */
export interface StatsWiring {
  server: StatsServer;
  /** Stops the retries and the server. */
  close(): Promise<void>;
}

/** Starts the stats server the options ask for, or returns `null` when they ask for none. */
export function startStatsServer(
  options: Readonly<ResolvedOptions>,
  writer: SlotWriter,
  reporter: Reporter,
  isClosing: () => boolean,
): StatsWiring | null {
  const address = options.stats;
  if (address === null) return null;
  let firstWrite: Promise<void> | null = null;
  let fileFailed = false;
  const read = createStatusFileProvider({
    path: options.path,
    staleAfterMs: options.staleAfter,
    identity: () => writer.identity(),
    self: async () => {
      // Before the first (jittered) tick this process has no slot yet: take it now rather than answer without it.
      if (writer.slot === null && !isClosing()) {
        firstWrite ??= writer.tick();
        await firstWrite;
      }
      return { worker: writer.snapshot(), assigned: writer.slot !== null };
    },
    onFileError: (error) => {
      fileFailed = true;
      reporter.report('stats-file', error);
    },
  });
  // An answer built from a good file ends the episodes of the failures before it.
  const provider = async () => {
    fileFailed = false;
    const document = await read();
    reporter.clear('stats-answer');
    if (!fileFailed) reporter.clear('stats-file');
    return document;
  };
  const server = new StatsServer({
    address,
    http: options.statsHttp,
    mode: options.statsMode,
    provider: coalesce(provider),
    ref: false,
    onError: (error) => reporter.report('stats-answer', error),
  });
  let attempt: Promise<void> | null = null;
  const tryListen = () => {
    if (attempt !== null || server.isListening || isClosing()) return;
    attempt = server
      .listen()
      .then(
        // Listening: the failures that kept it from listening are over.
        () => reporter.clear('stats-listen-*'),
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'ECLOSED') reporter.report(`stats-listen-${error.code ?? 'UNKNOWN'}`, error);
        },
      )
      .finally(() => {
        attempt = null;
      });
  };
  tryListen();
  const retry = setInterval(tryListen, options.interval);
  retry.unref();
  return {
    server,
    close: () => {
      clearInterval(retry);
      return server.close();
    },
  };
}
