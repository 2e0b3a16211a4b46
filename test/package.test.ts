/**
 * What we publish: `npm pack`, installed into a scratch project next to the
 * frameworks, as a user would. ESM import, CommonJS require() (Node >= 20.19),
 * the CLI through npx, and TypeScript against the published types.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from './support/helpers.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const pkg = (await import('../package.json', { with: { type: 'json' } })).default as {
  version: string;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};

describe('the published package', () => {
  const { dir, cleanup } = tempDir('wsgi-status-pack-');
  const project = join(dir, 'consumer');
  let files: string[] = [];

  before(async () => {
    if (!existsSync(join(root, 'dist', 'index.js'))) await run('npm', ['run', 'build'], { cwd: root });
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root });
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    files = packed.files.map((file) => file.path);
    await run('mkdir', ['-p', project]);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({
        name: 'consumer',
        private: true,
        dependencies: {
          'wsgi-status': `file:${join(dir, packed.filename)}`,
          express: pkg.devDependencies.express,
          koa: pkg.devDependencies.koa,
          fastify: pkg.devDependencies.fastify,
          typescript: pkg.devDependencies.typescript,
          '@types/node': pkg.devDependencies['@types/node'],
          '@types/express': pkg.devDependencies['@types/express'],
        },
      }),
    );
    // Everything but the tarball is in npm's cache already (npm ci of this repo).
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
      cwd: project,
      timeout: 180_000,
    });
  });
  after(cleanup);

  it('should contain dist, its types, README, LICENSE and package.json, and nothing else', () => {
    assert.ok(files.includes('dist/index.js'));
    assert.ok(files.includes('dist/index.d.ts'));
    assert.ok(files.includes('dist/cli/main.js'));
    assert.ok(files.includes('README.md'));
    assert.ok(files.includes('LICENSE'));
    const stray = files.filter((file) => !file.startsWith('dist/') && !['README.md', 'LICENSE', 'package.json'].includes(file));
    assert.deepEqual(stray, []);
    assert.deepEqual(
      files.filter((file) => file.endsWith('.map') || /test/.test(file)),
      [],
    );
  });

  it('should import from ESM and count a request', async () => {
    const script = join(project, 'esm.mjs');
    writeFileSync(
      script,
      `import { wsgiStatus, WsgiStatusMonitor, formatUwsgiJson } from 'wsgi-status';
import { instrument, wrap } from 'wsgi-status/http';
import koa from 'wsgi-status/koa';
import fastify from 'wsgi-status/fastify';
import { wsgiStatus as expressToo } from 'wsgi-status/express';
import express from 'express';
import { readFileSync } from 'node:fs';
for (const f of [wsgiStatus, WsgiStatusMonitor, formatUwsgiJson, instrument, wrap, koa, fastify, expressToo]) if (typeof f !== 'function') throw new Error('missing export');
const file = process.argv[2];
const status = wsgiStatus(file, { interval: 20 });
const app = express().use(status).get('/', (req, res) => res.send('ok'));
const server = app.listen(0, '127.0.0.1', async () => {
  await (await fetch('http://127.0.0.1:' + server.address().port + '/')).text();
  await new Promise((r) => setTimeout(r, 150));
  console.log(JSON.parse(readFileSync(file, 'utf8')).workers[0].requests);
  await status.close();
  server.close();
});
`,
    );
    const { stdout } = await run(process.execPath, [script, join(dir, 'esm-status.json')], { cwd: project });
    assert.equal(stdout.trim(), '1');
  });

  it('should require() from CommonJS on Node >= 20.19', async () => {
    const script = join(project, 'cjs.cjs');
    writeFileSync(
      script,
      `const { wsgiStatus } = require('wsgi-status');
const { instrument, wrap } = require('wsgi-status/http');
const koa = require('wsgi-status/koa');
const fastify = require('wsgi-status/fastify');
const http = require('node:http');
for (const f of [wsgiStatus, instrument, wrap, koa.default, fastify.default]) if (typeof f !== 'function') throw new Error('missing export');
const server = http.createServer((req, res) => res.end('ok'));
const status = instrument(server, process.argv[2], { interval: 20 });
server.listen(0, '127.0.0.1', async () => {
  await (await fetch('http://127.0.0.1:' + server.address().port + '/')).text();
  await new Promise((r) => setTimeout(r, 150));
  console.log(JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8')).workers[0].requests);
  await status.close();
  server.close();
});
`,
    );
    const { stdout } = await run(process.execPath, [script, join(dir, 'cjs-status.json')], { cwd: project });
    assert.equal(stdout.trim(), '1');
  });

  it('should run the CLI with npx wsgi-status --help', async () => {
    const { stdout } = await run('npx', ['--no-install', 'wsgi-status', '--help'], { cwd: project });
    assert.match(stdout, /Usage: wsgi-status/);
    for (const command of ['show', 'top', 'serve', 'mackerel']) assert.match(stdout, new RegExp(`\\b${command}\\b`));
  });

  it('should type-check a TypeScript consumer against the published types', async () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      `import express from 'express';
import { createServer } from 'node:http';
import { wsgiStatus, type UwsgiDocument, type WsgiStatusOptions } from 'wsgi-status';
import { instrument, wrap } from 'wsgi-status/http';
import koaStatus from 'wsgi-status/koa';
import fastifyStatus from 'wsgi-status/fastify';

const options: WsgiStatusOptions = { interval: 1000, mode: 0o644, onError: (error: Error) => console.error(error.message) };
const app = express();
const status = wsgiStatus('/dev/shm/app.json', options);
app.use(status);
const closed: Promise<void> = status.close();
const server = createServer((_req, res) => res.end());
const instrumentation = instrument(server, '/dev/shm/app.json');
const handler = wrap((_req, res) => res.end(), '/dev/shm/app.json');
const koaMiddleware = koaStatus('/dev/shm/app.json');
const document: UwsgiDocument | null = status.monitor.lastDocument;
const requests: number | undefined = document?.workers[0]?.requests;
void [closed, instrumentation.close, handler.close, koaMiddleware.close, fastifyStatus, requests];
// @ts-expect-error interval is a number of milliseconds
wsgiStatus('/dev/shm/app.json', { interval: '1s' });
`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          skipLibCheck: false,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    await run(join(project, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: project }).catch((error) => {
      assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`);
    });
  });
});

describe('npm pack --dry-run', () => {
  describe('when a source file has moved since the last build', () => {
    it('should list no stale dist/ file: every packed file is built from a source of today', async (t) => {
      if (!existsSync(join(root, 'dist', 'index.js'))) await run('npm', ['run', 'build'], { cwd: root });
      // A copy of the checkout whose dist/ still holds the output of src/version.ts at an old place,
      // as if version.ts had lived in src/old/ at the last build.
      const { dir, cleanup } = tempDir('wsgi-status-stale-');
      t.after(cleanup);
      for (const entry of ['src', 'dist', 'package.json', 'tsconfig.json', 'README.md', 'LICENSE']) {
        cpSync(join(root, entry), join(dir, entry), { recursive: true });
      }
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
      mkdirSync(join(dir, 'dist', 'old'));
      for (const file of ['version.js', 'version.d.ts']) cpSync(join(dir, 'dist', file), join(dir, 'dist', 'old', file));

      // Not --ignore-scripts: pack's prepack builds, and the build must start from an empty dist/.
      const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], {
        cwd: dir,
        timeout: 120_000,
        env: { ...process.env, NODE_V8_COVERAGE: undefined },
      });
      const [packed] = JSON.parse(stdout) as [{ files: { path: string }[] }];
      const built = packed.files.map((file) => file.path).filter((path) => path.startsWith('dist/'));
      assert.ok(built.includes('dist/version.js'), 'the build ran');
      assert.deepEqual(
        built.filter((path) => path.startsWith('dist/old/')),
        [],
      );
      const sources = new Set(built.map((path) => path.replace(/^dist\//, 'src/').replace(/(\.d)?\.js$|\.d\.ts$/, '.ts')));
      for (const source of sources) assert.ok(existsSync(join(dir, source)), `${source} (from a packed dist/ file) exists`);
    });
  });
});

/** The majors a range names: each `||` alternative must be `^N` or `N.x` (nothing open-ended). */
function majorsOf(range: string): number[] {
  return range.split('||').map((alternative) => {
    const match = /^(?:\^(\d+)|(\d+)\.x)$/.exec(alternative.trim());
    assert.ok(match, `"${alternative.trim()}" of "${range}" is not one major (^N or N.x)`);
    return Number(match[1] ?? match[2]);
  });
}

/** The majors of `framework` installed for the tests: itself and its aliases (`express4`: `npm:express@^4...`). */
function testedMajors(framework: string): number[] {
  const installed = Object.entries(pkg.devDependencies)
    .filter(([name, spec]) => name === framework || spec.startsWith(`npm:${framework}@`))
    .map(
      ([name]) =>
        JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { name: string; version: string },
    );
  for (const manifest of installed) assert.equal(manifest.name, framework);
  return installed.map((manifest) => Number(manifest.version.split('.')[0]));
}

describe('peerDependencies', () => {
  describe('when compared with the framework majors the tests run', () => {
    for (const framework of ['express', 'koa', 'fastify']) {
      it(`should name exactly the ${framework} majors installed for the matrix`, () => {
        const tested = testedMajors(framework);
        assert.ok(tested.length >= 2, `${framework}: the matrix runs two majors`);
        assert.deepEqual(
          majorsOf(pkg.peerDependencies[framework]).sort((a, b) => a - b),
          tested.sort((a, b) => a - b),
        );
      });
    }

    it("should agree with the Fastify plugin's own fastify-plugin declaration", async () => {
      const { default: plugin } = await import('../src/adapters/fastify.ts');
      const meta = (plugin as unknown as Record<symbol, { fastify: string }>)[Symbol.for('plugin-meta')];
      assert.deepEqual(
        majorsOf(meta.fastify).sort((a, b) => a - b),
        majorsOf(pkg.peerDependencies.fastify).sort((a, b) => a - b),
      );
    });
  });
});
