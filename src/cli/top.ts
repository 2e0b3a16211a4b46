/**
 * `wsgi-status top`: a live view refreshed every second, like uwsgitop.
 * On a terminal it draws on the alternate screen, reads keys raw and quits
 * on `q` or Ctrl-C, putting the terminal back as it found it. Without a
 * terminal (a pipe, a test) it prints one frame after another and quits on
 * `q` from stdin, SIGINT or SIGTERM.
 */
import type { UwsgiDocument } from '../model/document.js';
import { type CliContext, CliError, integerOption, onePositional, parseCommand } from './common.js';
import { describeSource, loadDocument, resolveSource } from './source.js';
import { summary, workerKey, workerTable } from './table.js';

export const TOP_HELP = `Usage: wsgi-status top <file|address> [--interval ms]

A live view of the workers: status, requests, req/s, in-flight, average
response time, memory, exceptions, and the listen queue. Quit with q or Ctrl-C.

  <file|address>   a status file, a stats socket path, unix://PATH,
                   tcp://HOST:PORT, HOST:PORT or http://HOST:PORT
  --interval ms    refresh period (default 1000)
  -h, --help       this help
`;

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[?25l';
const ALT_SCREEN_OFF = '\x1b[?25h\x1b[?1049l';
const HOME_CLEAR = '\x1b[H\x1b[2J';

/** Requests per second per worker between two documents taken `seconds` apart. */
export function rates(previous: UwsgiDocument | null, current: UwsgiDocument, seconds: number): Map<string, number> {
  const result = new Map<string, number>();
  if (previous === null || seconds <= 0) return result;
  const before = new Map((previous.workers ?? []).map((w) => [workerKey(w), w.requests] as const));
  for (const worker of current.workers ?? []) {
    const was = before.get(workerKey(worker));
    if (was !== undefined && worker.requests >= was) result.set(workerKey(worker), (worker.requests - was) / seconds);
  }
  return result;
}

export async function top(args: string[], context: CliContext): Promise<number> {
  const { values, positionals } = parseCommand('top', args, { interval: { type: 'string' } });
  if (values.help) {
    context.stdout.write(TOP_HELP);
    return 0;
  }
  const target = onePositional('top', positionals, 'the status file or stats address');
  const interval = integerOption('top', 'interval', values.interval as string | undefined, 1000, 50, 3_600_000);
  const source = await resolveSource(target);
  // The first read fails loudly (a typo, a server that is not there); later ones are shown in the view.
  let previous = await loadDocument(source, Math.max(interval, 1000));
  let previousAt = performance.now();
  let currentRates = new Map<string, number>();
  let lastError = '';

  const { stdout, stdin } = context;
  const terminal = stdout.isTTY === true;
  const rawKeys = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  const draw = () => {
    const total = [...currentRates.values()].reduce((a, b) => a + b, 0);
    const lines = [
      `wsgi-status top · ${describeSource(source)} · ${new Date().toLocaleTimeString()} · q to quit`,
      ...summary(previous, currentRates.size > 0 ? total : undefined),
      '',
      ...workerTable(previous, currentRates),
    ];
    if (lastError) lines.push('', `last refresh failed: ${lastError}`);
    stdout.write(terminal ? `${HOME_CLEAR}${lines.join('\n')}\n` : `${lines.join('\n')}\n\n`);
  };

  return new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    let stopped = false;
    const restore = () => {
      if (rawKeys) stdin.setRawMode(false);
      if (terminal) stdout.write(ALT_SCREEN_OFF);
    };
    // Even an unexpected exit must give the terminal back.
    process.once('exit', restore);
    const stop = () => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('exit', restore);
      stdin.off('data', onKey);
      stdin.pause();
      restore();
      resolve(0);
    };
    const onKey = (chunk: Buffer | string) => {
      const text = chunk.toString();
      if (text.includes('q') || text.includes('Q') || text.includes('\u0003')) stop();
    };
    const refresh = async () => {
      try {
        const document = await loadDocument(source, Math.max(interval, 1000));
        const now = performance.now();
        currentRates = rates(previous, document, (now - previousAt) / 1000);
        previous = document;
        previousAt = now;
        lastError = '';
      } catch (error) {
        lastError = error instanceof CliError ? error.message : String(error);
      }
      if (stopped) return;
      draw();
      timer = setTimeout(refresh, interval);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (rawKeys) stdin.setRawMode(true);
    stdin.on('data', onKey);
    stdin.resume();
    if (terminal) stdout.write(ALT_SCREEN_ON);
    draw();
    timer = setTimeout(refresh, interval);
  });
}
