/**
 * Serialises a document byte-for-byte the way uWSGI 2.0's stats server does:
 * TAB indentation, no space after ':', objects opened on their own indented
 * line (even after a key), strings in arrays at column 0, empty arrays and
 * objects as an open bracket, a blank line and the closing bracket, and no
 * trailing newline. Verified against test/fixtures/uwsgi-2.0.21-stats-raw.json.
 */
export function formatUwsgiJson(value: object): string {
  return formatObject(value as Record<string, unknown>, 0);
}

/** The minified form (`--stats-minified`): plain compact JSON. */
export function formatMinifiedJson(value: object): string {
  return JSON.stringify(value);
}

// Built by concatenation rather than arrays and join, and keys quoted once
// per process: rendering is the largest part of a tick (issue 18).
const INDENTS = [''];
const QUOTED_KEYS = new Map<string, string>();
const MAX_QUOTED_KEYS = 256;

function indentOf(depth: number): string {
  while (INDENTS.length <= depth) INDENTS.push(`${INDENTS[INDENTS.length - 1]}\t`);
  return INDENTS[depth];
}

function quotedKey(key: string): string {
  let quoted = QUOTED_KEYS.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (QUOTED_KEYS.size < MAX_QUOTED_KEYS) QUOTED_KEYS.set(key, quoted);
  }
  return quoted;
}

function formatObject(object: Record<string, unknown>, depth: number): string {
  const indent = indentOf(depth);
  const inner = indentOf(depth + 1);
  let text = `${indent}{\n`;
  let first = true;
  for (const key of Object.keys(object)) {
    const member = object[key];
    if (member === undefined) continue;
    text += `${first ? '' : ',\n'}${inner}${quotedKey(key)}:${formatValue(member, depth + 1)}`;
    first = false;
  }
  return `${text}\n${indent}}`;
}

function formatValue(value: unknown, depth: number): string {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (!Array.isArray(value)) return formatObject(value as Record<string, unknown>, depth);
  let text = '[\n';
  for (let i = 0; i < value.length; i++) {
    // An object item opens on its own indented line; a scalar sits at column 0.
    text += `${i > 0 ? ',\n' : ''}${formatValue(value[i], depth + 1)}`;
  }
  return `${text}\n${indentOf(depth)}]`;
}
