// The README's configuration reference, generated from the same zod schema
// that validates the file (via its JSON Schema), so the two cannot drift:
// test/docs.test.ts fails when README.md is stale (`npm run docs` fixes it).
import { configJsonSchema, type JsonSchemaNode } from './schema.js';

const DURATION_PATTERN = /ms\|s\|m\|h/;

function typeOf(node: JsonSchemaNode): string {
  if (Array.isArray(node['enum'])) return (node['enum'] as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
  if (node['const'] !== undefined) return `\`${String(node['const'])}\``;
  if (node.anyOf) {
    const pattern = node.anyOf.find((n) => typeof n['pattern'] === 'string')?.['pattern'];
    if (typeof pattern === 'string' && DURATION_PATTERN.test(pattern)) return 'duration';
    return node.anyOf.map(typeOf).join(' \\| ');
  }
  const type = node['type'];
  if (type === 'array') return `list of ${node.items ? typeOf(node.items) : 'values'}`;
  if (type === 'object' && !node.properties) return 'map of strings';
  return typeof type === 'string' ? type : 'value';
}

function defaultOf(node: JsonSchemaNode): string {
  const value = node['default'];
  if (value === undefined) return '';
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return '';
  return `\`${JSON.stringify(value).replace(/^"|"$/g, '')}\``;
}

function rows(node: JsonSchemaNode, prefix: string, required: readonly string[], out: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const isList = child['type'] === 'array' && child.items?.properties;
    const isSection = child['type'] === 'object' && child.properties;
    const entry = child['additionalProperties'] as JsonSchemaNode | undefined;
    const description = typeof child['description'] === 'string' ? child['description'] : '';
    const req = required.includes(key) ? ' (required)' : '';
    if (child['type'] === 'object' && !child.properties && entry?.properties) {
      // A map whose values are sections (listen[].tls.sni): one row per key of an entry.
      out.push(`| \`${path}\`${req} | map | | ${description} |`);
      rows(entry, `${path}.<name>`, (entry['required'] as string[] | undefined) ?? [], out);
    } else if (isSection || isList) {
      out.push(`| \`${path}\`${req} | ${isList ? 'list' : 'section'} | | ${description} |`);
      const inner = isList ? (child.items as JsonSchemaNode) : child;
      rows(inner, isList ? `${path}[]` : path, (inner['required'] as string[] | undefined) ?? [], out);
    } else {
      out.push(`| \`${path}\`${req} | ${typeOf(child)} | ${defaultOf(child)} | ${description} |`);
    }
  }
}

export function configReferenceMarkdown(): string {
  const schema = configJsonSchema();
  const out = ['| key | type | default | meaning |', '| --- | --- | --- | --- |'];
  rows(schema, '', (schema['required'] as string[] | undefined) ?? [], out);
  return `${out.join('\n')}\n`;
}
