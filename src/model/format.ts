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

function formatObject(object: Record<string, unknown>, depth: number): string {
  const indent = '\t'.repeat(depth);
  const inner = '\t'.repeat(depth + 1);
  const members: string[] = [];
  for (const key of Object.keys(object)) {
    const member = object[key];
    if (member === undefined) continue;
    members.push(`${inner}${JSON.stringify(key)}:${formatValue(member, depth + 1)}`);
  }
  return `${indent}{\n${members.join(',\n')}\n${indent}}`;
}

function formatValue(value: unknown, depth: number): string {
  if (Array.isArray(value)) {
    const items = value.map((item) =>
      item !== null && typeof item === 'object' ? formatObject(item as Record<string, unknown>, depth + 1) : JSON.stringify(item),
    );
    return `[\n${items.join(',\n')}\n${'\t'.repeat(depth)}]`;
  }
  if (value !== null && typeof value === 'object') return formatObject(value as Record<string, unknown>, depth);
  return JSON.stringify(value) ?? 'null';
}
