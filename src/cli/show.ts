/** `wsgi-status show`: the document once, as uWSGI-format JSON or as a table. */
import { formatUwsgiJson } from '../model/format.js';
import { type CliContext, CliError, integerOption, onePositional, parseCommand } from './common.js';
import { loadDocument, resolveSource } from './source.js';
import { summary, workerTable } from './table.js';

export const SHOW_HELP = `Usage: wsgi-status show <file|address> [--json | --table] [--timeout ms]

Print the status document once.

  <file|address>   a status file, a stats socket path, unix://PATH,
                   tcp://HOST:PORT, HOST:PORT or http://HOST:PORT
  --json           the document in uWSGI's own format (default)
  --table          a summary and one line per worker
  --timeout ms     how long to wait for a stats server (default 5000)
  -h, --help       this help

A status file is read the way "wsgi-status serve" serves it: workers whose
process is gone are left out and listen queues are measured now.
`;

export async function show(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parseCommand('show', args, {
    json: { type: 'boolean' },
    table: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  if (values.help) {
    context.stdout.write(SHOW_HELP);
    return 0;
  }
  if (values.json && values.table) throw new CliError('show: choose one of --json and --table', 2);
  const target = onePositional('show', positionals, 'the status file or stats address');
  const timeout = integerOption('show', 'timeout', values.timeout as string | undefined, 5000, 1, 600_000);
  const document = await loadDocument(await resolveSource(target), timeout, (message) =>
    context.stderr.write(`wsgi-status: show: ${message}\n`),
  );
  if (values.table) context.stdout.write(`${[...summary(document), '', ...workerTable(document)].join('\n')}\n`);
  else context.stdout.write(`${formatUwsgiJson(document)}\n`);
  return 0;
}
