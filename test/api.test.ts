/**
 * The public API is deliberate: each entry point of package.json `exports`
 * (new ones included, as they are added) exports exactly what README's API
 * section lists for it, imported from the built package by its own name as
 * a consumer would, and every name listed is described in that section.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | { types: string; default: string }>;
};
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** README's `## API` section, up to the next `## `. */
const api = /^## API\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';

const TABLE_HEAD = '| entry point | values | types |';

/** The table of exports by entry point: what each specifier exports, values and types apart. */
function listed(): Map<string, { values: string[]; types: string[] }> {
  const lines = api.split('\n');
  const start = lines.indexOf(TABLE_HEAD);
  assert.ok(start >= 0, `README's API section has no "${TABLE_HEAD}" table`);
  const names = (cell: string) => [...cell.matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((m) => m[1]).sort();
  const table = new Map<string, { values: string[]; types: string[] }>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [entry, values, types] = line.split('|').slice(1, -1);
    const specifier = /`([^`]+)`/.exec(entry)?.[1];
    assert.ok(specifier, `no entry point in ${line}`);
    table.set(specifier, { values: names(values), types: names(types) });
  }
  return table;
}

/** The entry points of package.json `exports`, as a consumer imports them (`wsgi-status/http`), with their types file. */
const entryPoints = Object.entries(pkg.exports)
  .filter(([subpath]) => subpath !== './package.json')
  .map(([subpath, target]) => {
    assert.ok(typeof target === 'object' && target.types, `exports["${subpath}"] names its types first`);
    return { specifier: pkg.name + subpath.slice(1), types: join(root, target.types) };
  });

/** Every name a declaration file exports (values and types), by TypeScript's own reading of it. */
function declaredExports(files: string[]): Map<string, string[]> {
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const exported = new Map<string, string[]>();
  for (const file of files) {
    const source = program.getSourceFile(file);
    assert.ok(source, `${file} is in the program`);
    const module = checker.getSymbolAtLocation(source);
    assert.ok(module, `${file} is a module`);
    exported.set(
      file,
      checker
        .getExportsOfModule(module)
        .map((symbol) => symbol.name)
        .sort(),
    );
  }
  return exported;
}

describe('the public API', () => {
  const table = listed();
  let declared = new Map<string, string[]>();

  before(async () => {
    if (!existsSync(join(root, 'dist', 'index.js'))) await promisify(execFile)('npm', ['run', 'build'], { cwd: root });
    declared = declaredExports(entryPoints.map((entry) => entry.types));
  });

  it("should list in README's table exactly the entry points of package.json exports", () => {
    assert.ok(entryPoints.length >= 5);
    assert.deepEqual([...table.keys()].sort(), entryPoints.map((entry) => entry.specifier).sort());
  });

  for (const { specifier, types } of entryPoints) {
    describe(`import('${specifier}')`, () => {
      it("should export at run time exactly the values README's table lists", async () => {
        const module = (await import(specifier)) as Record<string, unknown>;
        assert.deepEqual(Object.keys(module).sort(), table.get(specifier)?.values);
      });

      it("should declare exactly README's values and types, no more", async () => {
        const row = table.get(specifier);
        assert.ok(row);
        assert.deepEqual(declared.get(types), [...row.values, ...row.types].sort());
      });
    });
  }

  it('should describe every exported name in the API section, outside the table', () => {
    const prose = api.replace(/^\|.*\|$/gm, '');
    for (const [specifier, { values, types }] of table) {
      for (const name of [...values, ...types]) {
        if (name === 'default') continue;
        assert.match(prose, new RegExp(`\`(new |\\w+\\.)?${name}\\b`), `${specifier}: ${name} is not described`);
      }
    }
  });
});
