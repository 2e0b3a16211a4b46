/**
 * The store on hostile ground (issue 13): what sits at the path is never
 * followed, blocked on or read whole, a write never goes through a link, and
 * a writer that lost the lock never writes. Real files, real processes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LOCK_LOST } from '../src/store/lock.ts';
import { directoryMode, MAX_STATUS_BYTES, readStatusTextSync } from '../src/store/safe-file.ts';
import { StatusFile } from '../src/store/status-file.ts';
import { blockUntil, tempDir } from './support/helpers.ts';

const FIXTURE = new URL('support/processes/store-writer.ts', import.meta.url).pathname;
const lock = { staleMs: 2000, waitMs: 200, onCompromised: () => undefined };

function createEmpty(path: string): string {
  writeFileSync(path, '');
  return path;
}

function store(path: string, mode = 0o644): StatusFile {
  return new StatusFile(path, { mode, lock });
}

describe('StatusFile.update(merge)', () => {
  for (const [what, make, problem] of [
    ['a FIFO', (path: string) => execFileSync('mkfifo', [path]), 'not-regular'],
    ['a symlink to /dev/zero', (path: string) => symlinkSync('/dev/zero', path), 'symlink'],
    ['a 600 MB sparse file', (path: string) => truncateSync(createEmpty(path), 600 * 1024 * 1024), 'too-large'],
    [
      'a unix socket',
      // A process that exits while listening leaves the socket file behind.
      (path: string) =>
        execFileSync(process.execPath, [
          '-e',
          `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`,
        ]),
      'not-regular',
    ],
  ] as const) {
    describe(`when ${what} sits at the path`, () => {
      it('should report it, not read it, and replace it with a regular file', async () => {
        const { dir, cleanup } = tempDir();
        try {
          const path = join(dir, 'status.json');
          make(path);
          const started = Date.now();
          const { previous } = await store(path).update(() => '{"workers":[]}');
          assert.ok(Date.now() - started < 1000, 'never blocks');
          assert.equal(previous.problem, problem);
          assert.ok(lstatSync(path).isFile());
          assert.equal(readFileSync(path, 'utf8'), '{"workers":[]}');
        } finally {
          cleanup();
        }
      });
    });
  }

  describe('when a symlink to another file sits at the path', () => {
    it("should replace the link itself, leaving the target's bytes and mode unchanged", async () => {
      const { dir, cleanup } = tempDir();
      try {
        const target = join(dir, 'secret');
        writeFileSync(target, 'do not touch\n');
        chmodSync(target, 0o600);
        const path = join(dir, 'status.json');
        symlinkSync(target, path);
        const { previous } = await store(path).update(() => '{"workers":[]}');
        assert.equal(previous.problem, 'symlink');
        assert.equal(readFileSync(target, 'utf8'), 'do not touch\n');
        assert.equal(statSync(target).mode & 0o777, 0o600);
        assert.ok(lstatSync(path).isFile());
        assert.equal(statSync(path).mode & 0o777, 0o644);
      } finally {
        cleanup();
      }
    });
  });

  describe('when files of different sizes are read one after another', () => {
    it('should give each its own text exactly (the first 64 KiB of every read share one buffer)', () => {
      const { dir, cleanup } = tempDir();
      try {
        const texts = [`${'a'.repeat(200_000)}end`, '{"short":1}', 'b'.repeat(65_536), '', 'c'.repeat(70_000)];
        for (const [i, text] of texts.entries()) writeFileSync(join(dir, `${i}.json`), text);
        for (const round of [1, 2]) {
          for (const [i, text] of texts.entries()) {
            assert.equal(readStatusTextSync(join(dir, `${i}.json`)).text, text, `file ${i}, round ${round}`);
          }
        }
      } finally {
        cleanup();
      }
    });
  });

  describe('when a file over the cap sits at the path', () => {
    it('should read a document up to the cap, and none over it', () => {
      const { dir, cleanup } = tempDir();
      try {
        const path = join(dir, 'status.json');
        writeFileSync(path, Buffer.alloc(MAX_STATUS_BYTES, 0x20));
        assert.equal(readStatusTextSync(path).unusable, null);
        writeFileSync(path, Buffer.alloc(MAX_STATUS_BYTES + 1, 0x20));
        assert.equal(readStatusTextSync(path).unusable, 'too-large');
      } finally {
        cleanup();
      }
    });
  });

  describe('when the directory is missing', () => {
    it('should create it private: search only where mode lets read, never write for others', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const previous = process.umask(0);
        try {
          await store(join(dir, 'a', 'b', 'status.json'), 0o640).update(() => '{}');
          await store(join(dir, 'c', 'status.json')).update(() => '{}');
        } finally {
          process.umask(previous);
        }
        assert.equal(statSync(join(dir, 'a')).mode & 0o777, 0o750);
        assert.equal(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o750);
        assert.equal(statSync(join(dir, 'c')).mode & 0o777, 0o755);
        assert.equal(statSync(join(dir, 'a', 'b', 'status.json')).mode & 0o777, 0o640);
        assert.deepEqual([directoryMode(0o600), directoryMode(0o664), directoryMode(0o666)], [0o700, 0o755, 0o755]);
      } finally {
        cleanup();
      }
    });
  });

  describe('when the holder is blocked past the stale time between read and write (acceptance 2)', () => {
    it('should not write: the process that took the lock over keeps its write', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const path = join(dir, 'status.json');
        const children: Array<ReturnType<typeof spawn>> = [];
        const outcome = store(path).update(() => {
          // Fault injection: the merge blocks the event loop (a long synchronous handler would)
          // until another process has taken the stale lock over and written.
          const taker = spawn(process.execPath, ['--import', 'tsx', FIXTURE, path, '{"writer":"taker"}', '2000'], {
            stdio: 'ignore',
          });
          children.push(taker);
          blockUntil(() => {
            try {
              return readFileSync(path, 'utf8').includes('taker');
            } catch {
              return false; // Not written yet.
            }
          });
          return '{"writer":"blocked"}';
        });
        await assert.rejects(outcome, { code: LOCK_LOST });
        assert.equal(readFileSync(path, 'utf8'), '{"writer":"taker"}');
        assert.deepEqual(
          readdirSync(dir).filter((name) => name.startsWith('status.json.') && name !== 'status.json.lock'),
          [],
          'no temporary file left behind',
        );
        await Promise.all(
          children.map((child) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : null)),
        );
      } finally {
        cleanup();
      }
    });
  });

  describe('when a directory sits at the path', () => {
    it('should fail with EISDIR, leave it, and write again once it is gone', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const path = join(dir, 'status.json');
        mkdirSync(path);
        const file = store(path);
        await assert.rejects(
          file.update(() => '{}'),
          { code: 'EISDIR' },
        );
        assert.ok(statSync(path).isDirectory());
        execFileSync('rmdir', [path]);
        await file.update(() => '{"again":1}');
        assert.equal(readFileSync(path, 'utf8'), '{"again":1}');
      } finally {
        cleanup();
      }
    });
  });
});
