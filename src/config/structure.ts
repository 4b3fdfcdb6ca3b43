// Checks on the shape of a parsed YAML document that do not depend on the
// schema: duplicate keys and nesting depth, in one linear pass.
//
// yaml's own `uniqueKeys` option compares every new key of a map with all
// the keys before it: a 640 KB file with 40,000 `env` keys took 11-12 s to
// parse with it and 269 ms without. Here each map gets a Map from key to its
// first position, so the whole document costs one visit of every node.

import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node } from '../vendor/yaml.js';
import { MAX_NESTING } from './limits.js';

export type KeyPath = readonly (string | number)[];

/** Called once per problem, with the offset into the text where it is written. */
export type Report = (offset: number | undefined, path: KeyPath, message: string) => void;

interface Visit {
  readonly node: unknown;
  readonly path: KeyPath;
  readonly depth: number;
}

/** The string a key becomes in the JavaScript object (where `1` and `"1"` are the same key). */
function keyName(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

function start(node: unknown): number | undefined {
  return (node as Partial<Node> | null)?.range?.[0];
}

/**
 * Reports every duplicate key (at the repeated key, naming the first) and
 * the first place the document nests deeper than MAX_NESTING. Iterative, so
 * that no document can overflow the stack here.
 */
export function checkStructure(doc: Document.Parsed, report: Report, lineOf: (offset: number) => number): { tooDeep: boolean } {
  const stack: Visit[] = [{ node: doc.contents, path: [], depth: 0 }];
  let tooDeep = false;
  while (stack.length > 0) {
    const { node, path, depth } = stack.pop() as Visit;
    if (isAlias(node) || !(isMap(node) || isSeq(node))) continue;
    if (depth >= MAX_NESTING) {
      if (!tooDeep) report(start(node), path, `nested more than ${MAX_NESTING} levels deep`);
      tooDeep = true;
      continue;
    }
    if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i], depth: depth + 1 }));
      continue;
    }
    const first = new Map<string, number | undefined>();
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const name = keyName(pair.key);
      if (first.has(name)) {
        const at = first.get(name);
        const where = at === undefined ? '' : ` (first on line ${lineOf(at)})`;
        report(start(pair.key) ?? start(pair.value), [...path, name], `duplicate key "${name}"${where}`);
      } else {
        first.set(name, start(pair.key));
      }
      // A collection used as a key is refused by the schema; only values are walked.
      stack.push({ node: pair.value, path: [...path, name], depth: depth + 1 });
    }
  }
  return { tooDeep };
}
