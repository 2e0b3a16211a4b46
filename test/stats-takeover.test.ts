/**
 * The `stats` address shared by independent processes of one app (issue 12):
 * one serves it, the others retry every interval, report EADDRINUSE once per
 * episode, never remove a socket someone listens on, and take the address
 * over within one interval when the one serving stops. The real-process
 * version (PM2 fork mode) is in pm2.test.ts.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { UwsgiDocument } from '../src/model/document.ts';
import { WsgiStatusMonitor } from '../src/monitor.ts';
import { sleep, tempDir } from './support/helpers.ts';
import { readRaw } from './support/stats-helpers.ts';

const INTERVAL = 50;

describe('WsgiStatusMonitor option stats, shared by two processes of one app', () => {
  describe('when the one serving a unix socket closes', () => {
    it('should have the other serve it within one interval, after one EADDRINUSE report and no removal of the live socket', async (t) => {
      const { dir, cleanup } = tempDir();
      const sock = join(dir, 'stats.sock');
      const errors: Error[] = [];
      // The reporter swallows what onError throws: the first monitor's reports are collected and checked instead.
      const firstErrors: Error[] = [];
      // Two status files: in one process both monitors would share a pid, which the ledger keeps apart only across processes.
      const first = new WsgiStatusMonitor(join(dir, 'a.json'), {
        interval: INTERVAL,
        stats: sock,
        onError: (e) => firstErrors.push(e),
      });
      await first.stats?.listen();
      const second = new WsgiStatusMonitor(join(dir, 'b.json'), {
        interval: INTERVAL,
        stats: sock,
        onError: (e) => errors.push(e),
      });
      t.after(async () => {
        await first.close();
        await second.close();
        cleanup();
      });
      const inode = statSync(sock).ino;
      await sleep(8 * INTERVAL);
      assert.deepEqual(
        errors.map((e) => (e as NodeJS.ErrnoException).code),
        ['EADDRINUSE'],
        'reported once, however many retries',
      );
      assert.equal(second.stats?.isListening, false);
      assert.equal(statSync(sock).ino, inode, 'the live socket was never removed');
      const served = JSON.parse((await readRaw({ path: sock })).data.toString('utf8')) as UwsgiDocument;
      assert.equal(served.workers[0]?.pid, process.pid);

      await first.close();
      const closedAt = Date.now();
      const listening = (): boolean => second.stats?.isListening === true;
      while (!listening()) {
        assert.ok(Date.now() - closedAt < 20 * INTERVAL, 'taken over');
        await sleep(5);
      }
      const tookMs = Date.now() - closedAt;
      t.diagnostic(`taken over ${tookMs} ms after close()`);
      assert.ok(tookMs <= INTERVAL + 50, `within one interval (${tookMs} ms)`);
      const answer = JSON.parse((await readRaw({ path: sock })).data.toString('utf8')) as UwsgiDocument;
      assert.ok(Array.isArray(answer.workers));
      assert.equal(errors.length, 1, 'listening again is not a failure');
      assert.deepEqual(firstErrors, [], 'the first monitor reported nothing');
    });
  });

  describe('when a TCP port is held by another program and then freed', () => {
    it('should listen on it at the next retry, having reported EADDRINUSE once', async (t) => {
      const { dir, cleanup } = tempDir();
      const other = createServer();
      await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
      const port = (other.address() as { port: number }).port;
      const errors: Error[] = [];
      const monitor = new WsgiStatusMonitor(join(dir, 'c.json'), {
        interval: INTERVAL,
        stats: `127.0.0.1:${port}`,
        onError: (e) => errors.push(e),
      });
      t.after(async () => {
        await monitor.close();
        other.close();
        cleanup();
      });
      await sleep(4 * INTERVAL);
      assert.equal(errors.length, 1);
      await new Promise((resolve) => other.close(resolve));
      for (let i = 0; i < 100 && monitor.stats?.isListening !== true; i++) await sleep(5);
      assert.equal(monitor.stats?.isListening, true, 'listening once the port is free');
      assert.equal(errors.length, 1);
    });
  });
});
