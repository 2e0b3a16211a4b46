/**
 * `wsgi-status serve`: the stats server as a sidecar process, for apps that
 * only write the status file. Being its own process is the point: when the
 * app's event loop is blocked, the sidecar still answers, and measures the
 * app's listen queue at that moment.
 */
import { lstatSync } from 'node:fs';
import { resolveStatusPath } from '../options.js';
import { parseStatsAddress } from '../server/address.js';
import { coalesce } from '../server/providers.js';
import { StatsServer } from '../server/stats-server.js';
import { readStatusTextSync } from '../store/safe-file.js';
import { type CliContext, CliError, onePositional, parseCommand } from './common.js';
import { readStatusFile } from './source.js';

export const SERVE_HELP = `Usage: wsgi-status serve <status-file> --stats <address> [--stats-http] [--mode 660]

Serve a status file the way uWSGI's stats server does, until SIGINT or SIGTERM.

  <status-file>      the file the app writes (it may not exist yet)
  --stats address    a unix socket path, or HOST:PORT, :PORT, [V6]:PORT for TCP
                     (":PORT" listens on every interface, as in uWSGI)
  --stats-http       answer HTTP (uWSGI's --stats-http) instead of raw JSON
  --mode 660         file mode of a unix socket, in octal (default 660)
  -h, --help         this help

Each client gets the file as it is now, workers whose process is gone left
out, and the listen queues of the app's sockets measured at that moment. A
file the app did not write (a real uWSGI's stats, say) still gives a valid
document: its uWSGI-shaped workers, or none; what was wrong is said once.
`;

/** Parses an octal file mode such as `660`, `0660` or `0o660`. */
export function parseMode(text: string): number {
  const digits = text.replace(/^0o/i, '');
  if (!/^[0-7]{1,4}$/.test(digits) || Number.parseInt(digits, 8) > 0o777) {
    throw new CliError(`serve: --mode must be an octal file mode such as 660, got ${JSON.stringify(text)}`, 2);
  }
  return Number.parseInt(digits, 8);
}

export async function serve(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parseCommand('serve', args, {
    stats: { type: 'string' },
    'stats-http': { type: 'boolean' },
    mode: { type: 'string' },
  });
  if (values.help) {
    context.stdout.write(SERVE_HELP);
    return 0;
  }
  const file = onePositional('serve', positionals, 'the status file');
  let path: string;
  try {
    path = resolveStatusPath(file, 'status-file');
  } catch (error) {
    throw new CliError(`serve: ${(error as Error).message.replace(/^wsgi-status: /, '')}`, 2);
  }
  if (typeof values.stats !== 'string') throw new CliError('serve: missing --stats <address> (see wsgi-status serve --help)', 2);
  let address: ReturnType<typeof parseStatsAddress>;
  try {
    address = parseStatsAddress(values.stats, '--stats');
  } catch (error) {
    throw new CliError(`serve: ${(error as Error).message.replace(/^wsgi-status: /, '')}`, 2);
  }
  const mode = typeof values.mode === 'string' ? parseMode(values.mode) : 0o660;

  // Fail now on a file that cannot be read or replaced; a missing one is normal before the app starts.
  let first: ReturnType<typeof readStatusTextSync>;
  try {
    first = readStatusTextSync(path);
  } catch (error) {
    throw new CliError(`serve: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (first.unusable === 'not-regular' && lstatSync(path).isDirectory()) throw new CliError(`serve: cannot read ${path}: EISDIR`);

  // Once per kind of failure, as the library does: a broken file must not flood the log.
  const reported = new Set<string>();
  const report = (error: Error) => {
    const kind = (error as NodeJS.ErrnoException).code ?? error.message;
    if (reported.has(kind)) return;
    reported.add(kind);
    context.stderr.write(`wsgi-status: serve: ${error.message.replace(/^wsgi-status: /, '')}\n`);
  };
  const server = new StatsServer({
    address,
    http: values['stats-http'] === true,
    mode,
    // Every client gets a valid document, whatever the file holds (issue 13).
    provider: coalesce(() => readStatusFile(path, report)),
    onError: report,
  });
  try {
    await server.listen();
  } catch (error) {
    throw new CliError(`serve: ${(error as Error).message.replace(/^wsgi-status: /, '')}`);
  }
  context.stdout.write(`wsgi-status serve: listening on ${server.name} (${server.http ? 'http' : 'raw'}), serving ${path}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
