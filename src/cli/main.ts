#!/usr/bin/env node
/**
 * The `wsgi-status` program (package.json `bin`): runs {@link main} with this
 * process's streams and sets the exit status. Whatever escapes still ends as
 * one line on stderr, never a stack trace.
 */
import type { CliContext } from './common.js';
import { main } from './run.js';

// Whatever escapes still ends as one line, never a stack trace.
const fatal = (error: unknown) => {
  process.stderr.write(`wsgi-status: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}\n`);
  process.exit(1);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

let stdinUsed = false;
const context: CliContext = {
  stdout: process.stdout,
  stderr: process.stderr,
  // Lazy: opening stdin is only for top, and an open stdin can keep the process alive.
  get stdin() {
    stdinUsed = true;
    return process.stdin;
  },
  env: process.env,
};
main(process.argv.slice(2), context).then((code) => {
  process.exitCode = code;
  if (stdinUsed) (process.stdin as { unref?: () => void }).unref?.();
}, fatal);
