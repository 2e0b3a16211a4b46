/**
 * GET /status (issue 16) in a real browser: Debian's chromium, headless,
 * driven by playwright-core, against a real 4-worker node:cluster app that
 * serves its stats over HTTP, and against the `wsgi-status serve` sidecar
 * stopped and started again on the same port.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../scripts/chromium.ts';
import type { UwsgiDocument } from '../src/model/document.ts';
import { StatsServer } from '../src/server/stats-server.ts';
import { ClusterGroup, startLoad } from './support/cluster-harness.ts';
import { get, readStatus, sleep, tempDir } from './support/helpers.ts';
import { decodePng } from './support/png.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** A TCP port nobody listens on right now (the stats address must be known before the workers start). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The JSON document from an HTTP stats server. */
async function fetchDocument(port: number): Promise<UwsgiDocument> {
  return JSON.parse((await get(port, '/')).body) as UwsgiDocument;
}

/** Polls `read` until `check` holds; rejects after `timeoutMs` with the last value read. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await read();
    if (check(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await sleep(50);
  }
}

/** What the page's scoreboard shows: one entry per cell. */
function board(page: Page): Promise<Array<{ id: string; pid: number; state: string }>> {
  return page.$$eval('#board .cell', (cells) =>
    cells.map((cell) => ({
      id: cell.getAttribute('data-key') ?? '',
      pid: Number(cell.getAttribute('data-pid')),
      state: cell.getAttribute('data-state') ?? '',
    })),
  );
}

/** One table field of every worker row, by slot id. */
function column(page: Page, field: string): Promise<Record<string, string>> {
  return page.$$eval(
    '#rows tr',
    (rows, name) =>
      Object.fromEntries(
        rows.map((row) => [row.getAttribute('data-key'), row.querySelector(`td[data-field="${name}"]`)?.textContent ?? '']),
      ),
    field,
  );
}

/** Everything a page asked for and complained about. */
function watch(page: Page): { urls: string[]; errors: string[] } {
  const seen = { urls: [] as string[], errors: [] as string[] };
  page.on('request', (req) => seen.urls.push(req.url()));
  page.on('console', (message) => {
    if (message.type() === 'error') seen.errors.push(message.text());
  });
  page.on('pageerror', (error) => seen.errors.push(String(error)));
  return seen;
}

/** Starts `wsgi-status serve --stats-http` on `address`; resolves with the child and its port. */
async function startSidecar(file: string, address: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', file, '--stats', address, '--stats-http'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk;
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const port = /listening on 127\.0\.0\.1:(\d+)/.exec(output)?.[1];
    if (port !== undefined) return { child, port: Number(port) };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the sidecar did not start: ${output}`);
    }
    await sleep(20);
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A GET that stays open until the worker is told to release it; resolves once answered. */
function heldRequest(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /status (the live status page)', { timeout: 45_000 }, () => {
  const { dir, cleanup } = tempDir('wsgi-status-page-');
  const statusFile = join(dir, 'status.json');
  let group: ClusterGroup;
  let browser: Browser;
  let statsPort: number;
  let appPort: number;
  let pids: number[];
  const sidecars: ChildProcess[] = [];

  before(async () => {
    statsPort = await freePort();
    group = new ClusterGroup(4, { STATUS_FILE: statusFile, INTERVAL: '250', STATS: `127.0.0.1:${statsPort}`, STATS_HTTP: '1' });
    const [launched, listening] = await Promise.all([launchChromium({ timeout: 20_000 }), group.listening(4)]);
    browser = launched;
    appPort = listening.port;
    pids = listening.pids;
    await eventually(
      () => fetchDocument(statsPort).catch(() => null),
      (doc) => doc !== null && doc.workers.length === 4,
      15_000,
      '4 workers in the served document',
    );
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    for (const child of sidecars) child.kill('SIGKILL');
    await Promise.all(sidecars.map(exited));
    await group?.stop();
    cleanup();
  });

  describe('when asked over HTTP', () => {
    it('should answer HTML with a CSP that allows only its own script, style and origin, and no cookie, also with a query', async () => {
      const response = await get(statsPort, '/status?x=1');
      assert.equal(response.status, 200);
      assert.equal(response.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(response.headers['cache-control'], 'no-store');
      assert.equal(response.headers['x-content-type-options'], 'nosniff');
      assert.equal(response.headers['referrer-policy'], 'no-referrer');
      assert.equal(response.headers['set-cookie'], undefined);
      const csp = String(response.headers['content-security-policy']);
      assert.match(csp, /^default-src 'none'; connect-src 'self'; /);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:|\*/);
      // The hashes are of exactly what the page carries.
      for (const [tag, directive] of [
        ['script', 'script-src'],
        ['style', 'style-src'],
      ]) {
        const content = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(response.body)?.[1] ?? '';
        assert.ok(content.length > 100, `no inline ${tag}`);
        const hash = createHash('sha256').update(content).digest('base64');
        assert.ok(csp.includes(`${directive} 'sha256-${hash}'`), `${directive} does not allow the page's ${tag}: ${csp}`);
      }
      assert.ok(response.body.length < 24 * 1024, `the page is ${response.body.length} bytes`);
      // Every other path still answers the JSON document.
      assert.equal((await fetchDocument(statsPort)).workers.length, 4);
    });
  });

  describe('when opened in a browser against a 4-worker cluster', () => {
    let page: Page;
    let seen: { urls: string[]; errors: string[] };

    before(async () => {
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      seen = watch(page);
      await page.goto(`http://127.0.0.1:${statsPort}/status`, { timeout: 10_000 });
    });

    it('should list the 4 workers with the pids of the file', async () => {
      const cells = await eventually(
        () => board(page),
        (shown) => shown.length === 4,
        5000,
        'four cells',
      );
      assert.deepEqual(
        cells.map((cell) => cell.pid).sort(),
        [...pids].sort(),
        'the scoreboard shows the pids of the workers that listen',
      );
      const file = readStatus(statusFile);
      assert.deepEqual(
        cells.map((cell) => [Number(cell.id), cell.pid]),
        file.workers.map((w) => [w.id, w.pid]),
        'the cells are the slots of the file, in order',
      );
    });

    it('should turn one cell busy within 2 s of a held request, show its path as text, and idle after its release', async () => {
      // Markup in the path: the page must show it as text, never parse it.
      const path = '/hold/<img/src=x/onerror=alert(1)><b>x</b>';
      // The earlier tests' requests may still show as busy in the workers' last writes.
      await eventually(
        () => board(page),
        (cells) => cells.length === 4 && cells.every((cell) => cell.state === 'idle'),
        5000,
        'every worker idle before the held request',
      );
      const answered = heldRequest(appPort, path);
      const held = await group.waitFor((event) => event.type === 'held', 5000, 'a held request');
      const heldAt = Date.now();
      await eventually(
        () => board(page),
        (cells) => cells.some((cell) => cell.pid === held.pid && cell.state === 'busy'),
        2000,
        `worker ${held.pid} busy`,
      );
      assert.ok(Date.now() - heldAt <= 2000);
      const cells = await board(page);
      assert.equal(cells.filter((cell) => cell.state === 'busy').length, 1, JSON.stringify(cells));
      const id = cells.find((cell) => cell.pid === held.pid)?.id ?? '';
      assert.equal((await column(page, 'current'))[id], `GET ${path}`);
      assert.equal(await page.locator('#rows img, #rows b, #board img, #board b:not(:first-child)').count(), 0);

      group.send(held.pid, { cmd: 'release' });
      assert.equal(await answered, 200);
      await eventually(
        () => board(page),
        (shown) => shown.every((cell) => cell.state === 'idle'),
        2000,
        'every worker idle',
      );
      assert.equal((await column(page, 'current'))[id], '');
    });

    it("should show each worker's request count as the document has it", async () => {
      const load = startLoad(appPort, { concurrency: 4, maxRequests: 60, durationMs: 5000 });
      assert.equal((await load.done).ok, 60);
      // Wait for the workers to write their counts, then for the page to catch up with the document.
      const doc = await eventually(
        () => fetchDocument(statsPort),
        (d) => d.workers.reduce((sum, w) => sum + w.requests, 0) >= 61,
        3000,
        '61 requests in the document',
      );
      const expected = Object.fromEntries(doc.workers.map((w) => [String(w.id), w.requests.toLocaleString('en-US')]));
      const shown = await eventually(
        () => column(page, 'requests'),
        (requests) => JSON.stringify(requests) === JSON.stringify(expected),
        3000,
        'the document counts on the page',
      ).catch(() => column(page, 'requests'));
      assert.deepEqual(shown, expected);
      const total = (await page.textContent('#s-requests'))?.replace(/,/g, '');
      assert.equal(total, String(doc.workers.reduce((sum, w) => sum + w.requests, 0)));
    });

    it('should request nothing from any other origin and log no console error', async () => {
      await sleep(1500); // a few more polls
      const origin = `http://127.0.0.1:${statsPort}`;
      assert.ok(seen.urls.length >= 5, `only ${seen.urls.length} requests: ${seen.urls.join(' ')}`);
      for (const url of seen.urls) assert.equal(new URL(url).origin, origin, `a request to ${url}`);
      assert.ok(
        seen.urls.some((url) => url === `${origin}/`),
        'it polls the JSON document',
      );
      assert.deepEqual(seen.errors, []);
    });

    it('should render at 1280x800 and at 400x800 without horizontal overflow', async () => {
      const shots = tempDir('wsgi-status-shots-');
      try {
        for (const width of [1280, 400]) {
          await page.setViewportSize({ width, height: 800 });
          await sleep(1200); // one more poll at this size
          const overflow = await page.$eval('html', (html) => html.scrollWidth);
          assert.ok(overflow <= width, `scrollWidth ${overflow} at ${width} px`);
          const file = join(shots.dir, `status-${width}.png`);
          const png = decodePng(await page.screenshot({ path: file }));
          assert.equal(png.width, width);
          assert.equal(png.height, 800);
          // Not blank: text, borders and the scoreboard's idle green are there.
          assert.ok(png.colours.size > 20, `only ${png.colours.size} colours at ${width} px`);
          assert.ok(png.colours.has(0x2b8a3e), `no idle-green cell at ${width} px`);
          const boxes = await page.$$eval('#board .cell', (cells) =>
            cells.map((cell) => cell.getBoundingClientRect()).map((r) => [r.left, r.right, r.width]),
          );
          assert.equal(boxes.length, 4);
          for (const [left, right, w] of boxes) assert.ok(left >= 0 && right <= width && w > 40, `a cell at ${left}..${right}`);
        }
      } finally {
        shots.cleanup();
      }
      assert.deepEqual(seen.errors, []);
    });
  });

  describe('when the document has cheap and stuck slots', () => {
    it('should colour slots with no process cheap, and a live pid not written for 1.5 intervals stuck', async () => {
      // uWSGI's own capture: one idle worker and three cheaped ones (pid 0, id 0), plus two Node entries.
      const capture = JSON.parse(readFileSync(join(FIXTURES, 'uwsgi-2.0.21-stats-cheap.json'), 'utf8')) as UwsgiDocument;
      const node = capture.workers[0];
      const server = new StatsServer({
        address: '127.0.0.1:0',
        http: true,
        provider: async () => ({
          ...capture,
          workers: [
            ...capture.workers,
            { ...node, id: 5, pid: process.pid, status: 'busy', last_update: Date.now() - 30_000, method: 'GET', uri: '/stuck' },
            { ...node, id: 6, pid: process.pid, status: 'idle', last_update: Date.now() },
          ],
        }),
      });
      await server.listen();
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      try {
        const seen = watch(page);
        await page.goto(`http://${server.name}/status`, { timeout: 10_000 });
        const cells = await eventually(
          () => board(page),
          (shown) => shown.length === 6,
          5000,
          'six cells',
        );
        assert.deepEqual(
          cells.map((cell) => [cell.pid, cell.state]),
          [
            [0, 'cheap'],
            [0, 'cheap'],
            [0, 'cheap'],
            [9708, 'idle'],
            [process.pid, 'stuck'],
            [process.pid, 'idle'],
          ],
        );
        assert.equal(await page.textContent('#s-cheap'), '3');
        assert.equal(await page.textContent('#s-stuck'), '1');
        assert.deepEqual(seen.errors, []);
      } finally {
        await page.close();
        await server.close();
      }
    });
  });

  describe('when the server stops answering and starts again on the same port', () => {
    it('should show "not reachable since" within 3 s and recover without a reload', async () => {
      let sidecar = await startSidecar(statusFile, '127.0.0.1:0');
      sidecars.push(sidecar.child);
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const seen = watch(page);
      await page.goto(`http://127.0.0.1:${sidecar.port}/status`, { timeout: 10_000 });
      await eventually(
        () => board(page),
        (cells) => cells.length === 4,
        5000,
        'four cells from the sidecar',
      );
      assert.equal(await page.textContent('#pill'), 'live');
      await page.evaluate(() => {
        (globalThis as { marker?: number }).marker = 42;
      });

      sidecar.child.kill('SIGTERM');
      await exited(sidecar.child);
      const stoppedAt = Date.now();
      await eventually(
        () => page.textContent('#pill'),
        (text) => text === 'not reachable',
        3000,
        'the unreachable state',
      );
      assert.ok(Date.now() - stoppedAt <= 3000);
      const banner = (await page.textContent('#down')) ?? '';
      assert.match(banner, /^Not reachable since \d{1,2}:\d\d:\d\d/);
      assert.ok(await page.isVisible('#down'));
      assert.equal(await page.getAttribute('#main', 'class'), 'stale');

      sidecar = await startSidecar(statusFile, `127.0.0.1:${sidecar.port}`);
      sidecars.push(sidecar.child);
      await eventually(
        () => page.textContent('#pill'),
        (text) => text === 'live',
        3000,
        'the live state again',
      );
      assert.equal(await page.isVisible('#down'), false);
      assert.equal(await page.evaluate(() => (globalThis as { marker?: number }).marker), 42, 'the page was reloaded');
      assert.equal((await board(page)).length, 4);
      // While it was down, the browser logged the refused fetches; nothing else.
      for (const error of seen.errors) assert.match(error, /net::ERR_CONNECTION_REFUSED|Failed to fetch/, error);
      await page.close();
    });
  });
});
