/**
 * For tests that run a child as another user (uid 65534, as root): the
 * checkout may sit in a private 0700 directory (a Docker image's /root/app,
 * any `mktemp -d`), where that user can read nothing of it (issue 13, item 9).
 * So the child gets a world-readable copy of what it needs: the built package
 * (dist/, from `npm test`'s pretest build), its production dependencies, and
 * the plain-JavaScript fixture.
 */
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Where node would find `name` from package directory `from`: its own node_modules, then each parent's. */
function locate(name: string, from: string): string {
  for (let dir = from; dir === ROOT || dir.startsWith(`${ROOT}/`); dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === ROOT) break;
  }
  throw new Error(`private-copy: cannot find ${name} from ${from}`);
}

/** The package directories the built package needs at run time (its dependencies, transitively). */
function productionPackages(): string[] {
  const found = new Set<string>();
  const visit = (dir: string) => {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      const located = locate(name, dir);
      if (found.has(located)) continue;
      found.add(located);
      visit(located);
    }
  };
  visit(ROOT);
  return [...found];
}

/**
 * A world-readable directory holding dist/, the production node_modules and
 * `fixture` (a path under test/support/processes/). Returns the copy's paths and a cleanup.
 */
export function worldReadableCopy(fixture: string): { dir: string; fixture: string; http: string; cleanup: () => void } {
  if (!existsSync(join(ROOT, 'dist', 'adapters', 'http.js'))) {
    throw new Error('private-copy: dist/ is missing; run `npm run build` (npm test does it first)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-status-copy-'));
  chmodSync(dir, 0o755);
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  for (const located of productionPackages()) cpSync(located, join(dir, relative(ROOT, located)), { recursive: true });
  const copied = join(dir, 'fixture.mjs');
  cpSync(join(ROOT, 'test', 'support', 'processes', fixture), copied);
  return {
    dir,
    fixture: copied,
    http: join(dir, 'dist', 'adapters', 'http.js'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
