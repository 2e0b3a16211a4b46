/**
 * Takes the status file's lock as a tick does (withBriefLock: once the
 * current holder's lock is stale, proper-lockfile takes it over), marks that
 * with the file `<status file>.taken`, holds it for HOLD_MS, then releases.
 * Used by test/lock.test.ts against a holder whose event loop is blocked.
 *
 * argv: <status file> <HOLD_MS> <staleMs>. stdout: 'released' or 'failed <code>'.
 */
import { writeFileSync } from 'node:fs';
import { withBriefLock } from '../../../src/store/lock.ts';
import { blockFor } from '../helpers.ts';

const [file, holdMs, staleMs] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
try {
  await withBriefLock(file, { lockPath: `${file}.lock`, staleMs, waitMs: 8000, onCompromised: () => undefined }, () => {
    writeFileSync(`${file}.taken`, '');
    blockFor(holdMs);
  });
  process.stdout.write('released\n');
} catch (error) {
  process.stdout.write(`failed ${(error as NodeJS.ErrnoException).code}\n`);
}
