/**
 * `npm run screenshot`: writes docs/status-page.png, README's picture of the
 * status page (issue 16). It runs the demo (examples/demo.js: 4 workers under
 * varied load), opens the page URL the demo prints in Debian's chromium,
 * headless, through playwright-core (the driver the tests use), lets the
 * charts fill for SCREENSHOT_SECONDS (default 75: the charts span at least a minute), and takes a 1280x800 shot.
 * Then it stops the demo as Ctrl-C would, and closes the browser, pass or fail.
 *
 * Environment: SCREENSHOT_SECONDS, SCREENSHOT_OUT (default docs/status-page.png),
 * CHROMIUM (default /usr/bin/chromium).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const seconds = Number(process.env.SCREENSHOT_SECONDS ?? 75);
const out = process.env.SCREENSHOT_OUT ?? `${root}docs/status-page.png`;

const demo = spawn(process.execPath, [`${root}examples/demo.js`], {
  env: { ...process.env, DEMO_SECONDS: '0' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let said = '';
demo.stdout.on('data', (chunk: Buffer) => {
  said += chunk;
});
const demoExit = new Promise((resolve) => demo.once('exit', resolve));

const browser = await launchChromium();
try {
  const deadline = Date.now() + 30_000;
  let url = /status page: +(http:\S+)/.exec(said)?.[1];
  while (url === undefined) {
    if (Date.now() > deadline || demo.exitCode !== null) throw new Error(`the demo printed no status page URL:\n${said}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    url = /status page: +(http:\S+)/.exec(said)?.[1];
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url);
  console.log(`${url}: waiting ${seconds} s for the charts to fill`);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  demo.kill('SIGINT');
  await demoExit;
}
