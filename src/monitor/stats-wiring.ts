/**
 * The `stats` option: a uWSGI-compatible stats server inside the app. Each
 * client gets the status file as it is now with this process's own entry
 * fresh from memory, and the listen queues measured at that moment. A listen
 * failure is reported; the app keeps serving.
 */
import type { ResolvedOptions } from '../options.js';
import { coalesce, createStatusFileProvider } from '../server/providers.js';
import { StatsServer } from '../server/stats-server.js';
import type { Reporter } from './reporter.js';
import type { SlotWriter } from './slot-writer.js';

/** Starts the stats server the options ask for, or returns `null` when they ask for none. */
export function startStatsServer(
  options: Readonly<ResolvedOptions>,
  writer: SlotWriter,
  reporter: Reporter,
  isClosing: () => boolean,
): StatsServer | null {
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
    reporter.clear(fileFailed ? 'stats-answer' : 'stats-*');
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
  server.listen().catch((error: NodeJS.ErrnoException) => reporter.report(`stats-${error.code ?? 'listen'}`, error));
  return server;
}
