/**
 * Debian's headless chromium through playwright-core, as the status page's
 * test and `npm run screenshot` both start it.
 */
import { type Browser, chromium } from 'playwright-core';

/** Chromium needs these here: as root it refuses to start without --no-sandbox, and the rest keep it off the network. */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Starts the system browser (`/usr/bin/chromium`, or `CHROMIUM`). */
export function launchChromium(options: { timeout?: number } = {}): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ARGS, ...options });
}
