/**
 * The `wsgi-status` command line, as a function: src/cli/main.ts runs it as
 * the program. Every failure ends as one line on stderr and a non-zero exit
 * status (1 for a failure, 2 for bad usage), never a stack trace.
 */
import { VERSION } from '../version.js';
import { type CliContext, CliError } from './common.js';
import { mackerel } from './mackerel.js';
import { serve } from './serve.js';
import { show } from './show.js';
import { top } from './top.js';

const HELP = `Usage: wsgi-status <command> [options]

uWSGI-compatible worker status for Node.js apps.

Commands:
  show <file|address>       print the status document once (JSON or table)
  top <file|address>        live view of the workers; q to quit
  serve <status-file> --stats <address>
                            serve a status file like uWSGI's stats server
  mackerel <file|address>   Mackerel agent plugin (mackerel-plugin-uwsgi-vassal compatible)

Addresses: a status file, a stats socket path, unix://PATH, tcp://HOST:PORT,
HOST:PORT or http://HOST:PORT.

Run "wsgi-status <command> --help" for a command's options.
  -h, --help       this help
  -v, --version    the version
`;

const COMMANDS: Record<string, (args: string[], context: CliContext) => Promise<number>> = { show, top, serve, mackerel };

/** Runs the command line `argv` (without node and the script); resolves with the exit status. */
export async function main(argv: string[], context: CliContext): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      context.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    }
    if (command === '-v' || command === '--version') {
      context.stdout.write(`${VERSION}\n`);
      return 0;
    }
    const run = COMMANDS[command];
    if (!run) throw new CliError(`unknown command ${JSON.stringify(command)} (see wsgi-status --help)`, 2);
    return await run(args, context);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    context.stderr.write(`wsgi-status: ${message.replace(/^wsgi-status: /, '').split('\n')[0]}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}
