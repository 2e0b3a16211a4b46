/**
 * README.md stays true: its code is the code the tests run, and it documents
 * every option and every CLI command.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveOptions } from '../src/options.ts';

const root = new URL('..', import.meta.url).pathname;
const readme = readFileSync(join(root, 'README.md'), 'utf8');
// Fenced blocks, also indented ones (inside a list item), dedented.
const blocks = [...readme.matchAll(/^( *)```(\w+)\n([\s\S]*?)\n\1```$/gm)].map((m) => ({
  lang: m[2],
  code: m[3].replace(new RegExp(`^${m[1]}`, 'gm'), ''),
}));

/** Every file of examples/, examples/monitoring/ and examples/register/, by relative path. */
function exampleFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const dir of ['examples', 'examples/monitoring', 'examples/register']) {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      if (entry.isFile()) files.set(`${dir}/${entry.name}`, readFileSync(join(root, dir, entry.name), 'utf8').trimEnd());
    }
  }
  return files;
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();

/** The tables of a Markdown text, outside fenced blocks: their rows, and the line after each table. */
function tables(text: string): { rows: string[]; next: string | undefined }[] {
  const found: { rows: string[]; next: string | undefined }[] = [];
  const lines = text.split('\n');
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    if (/^ *```/.test(lines[i])) fenced = !fenced;
    if (fenced || !lines[i].startsWith('|')) continue;
    const rows: string[] = [];
    while (i < lines.length && lines[i].startsWith('|')) rows.push(lines[i++]);
    found.push({ rows, next: lines[i] });
  }
  return found;
}

/** A row's cells, split on pipes not escaped (GitHub splits on those even inside backticks). */
const cells = (row: string) => row.split(/(?<!\\)\|/).slice(1, -1);

describe('README.md', () => {
  const examples = exampleFiles();
  const tested = [...examples.values()].map(squash).join('\n');

  it('should show only code that a test runs: whole example files, or lines taken from them verbatim', () => {
    assert.ok(blocks.length >= 10);
    const wholeFiles = new Set([...examples.values()]);
    for (const block of blocks) {
      if (wholeFiles.has(block.code)) continue;
      if (
        block.lang === 'sh' &&
        block.code.split('\n').every((line) => /^(npm|#|\s*$)/.test(line.trim()) || tested.includes(squash(line)))
      )
        continue;
      assert.ok(tested.includes(squash(block.code)), `this ${block.lang} block is in no example file:\n${block.code}`);
    }
  });

  it('should quote each framework example whole', () => {
    for (const file of ['express.js', 'koa.js', 'fastify.js', 'http.js', 'instrument.js']) {
      assert.ok(
        blocks.some((block) => block.code === examples.get(`examples/${file}`)),
        `examples/${file} is not quoted in README.md`,
      );
    }
  });

  it('should give the two commands, with scripts that exist', () => {
    const scripts = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts as Record<string, string>;
    assert.match(readme, /npm install && npm start/);
    assert.match(readme, /^npm test\b/m);
    assert.ok(scripts.start && scripts.test);
    for (const [, script] of readme.matchAll(/`npm run ([\w:-]+)`/g))
      assert.ok(scripts[script], `npm run ${script} is not a script`);
  });

  it('should list every option with its default', () => {
    const known = Object.keys(resolveOptions('/tmp/x.json')).filter((key) => key !== 'path');
    assert.ok(known.length >= 9);
    for (const option of known) {
      const row = new RegExp(`^\\| \`${option}\` \\| ([^|]+) \\|`, 'm').exec(readme);
      assert.ok(row, `option ${option} has no row in the options table`);
      assert.notEqual(row[1].trim(), '', `option ${option} has no default`);
    }
  });

  it("should document every CLI command and every option of each command's --help", async () => {
    const { main } = await import('../src/cli/run.ts');
    const help = async (args: string[]) => {
      let text = '';
      await main(args, {
        stdout: { write: (chunk: string) => (text += chunk) },
        stderr: { write: () => true },
        get stdin(): NodeJS.ReadStream {
          throw new Error('no stdin');
        },
        env: {},
      });
      return text;
    };
    const commands = [...(await help(['--help'])).matchAll(/^ {2}(\w+) </gm)].map((m) => m[1]);
    assert.deepEqual(commands.sort(), ['mackerel', 'serve', 'show', 'top']);
    for (const command of commands) {
      assert.match(readme, new RegExp(`\`wsgi-status ${command} `), `wsgi-status ${command} is not in README.md`);
      for (const [flag] of (await help([command, '--help'])).matchAll(/--[a-z][\w-]*/g)) {
        if (flag === '--help') continue;
        assert.ok(readme.includes(`\`${flag}`), `wsgi-status ${command} ${flag} is not in README.md`);
      }
    }
  });

  describe('when it has tables', () => {
    const found = tables(readme);

    it('should close every row on its own line, with as many cells as its header, and end each table at a blank line', () => {
      assert.ok(found.length >= 5);
      for (const { rows, next } of found) {
        const width = cells(rows[0]).length;
        for (const row of rows) {
          assert.ok(row.endsWith('|'), `a table row runs on past its line:\n${row.slice(0, 200)}`);
          assert.equal(cells(row).length, width, `a row with other than ${width} cells:\n${row.slice(0, 200)}`);
        }
        assert.ok(next === undefined || next.trim() === '', `a table is followed by text, not a blank line: ${next}`);
      }
    });

    it('should render no example file inside a cell', () => {
      // Any line of an example long enough to be its own (short ones such as `wait` or `jobs:` are everywhere).
      const exampleLines = [...examples.entries()].flatMap(([file, text]) =>
        text
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line.length >= 30)
          .map((line) => ({ file, line })),
      );
      assert.ok(exampleLines.length >= 20);
      for (const { rows } of found) {
        for (const row of rows) {
          for (const { file, line } of exampleLines) {
            assert.ok(!row.includes(line), `a table row holds a line of ${file}: ${line}`);
          }
        }
      }
    });
  });
});
