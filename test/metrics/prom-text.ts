// A small parser of the Prometheus text exposition format (version 0.0.4),
// strict enough to catch what a scraper would choke on: every sample must
// belong to a family declared with # TYPE, label values must be quoted and
// escaped, a series may appear once, and a histogram's buckets must be
// cumulative and end in +Inf equal to its _count.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (with _bucket, _sum, _count where they apply). */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: Sample[];
}

export class ExpositionError extends Error {
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

function unescape(text: string, quotes: boolean): string {
  return text.replace(quotes ? /\\(["\\n])/g : /\\([\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(text: string, line: number): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new ExpositionError(line, `not a number: ${JSON.stringify(text)}`);
  return Number(text);
}

/** `name{a="1",b="2"} value [timestamp]` */
function parseSample(text: string, line: number): Sample {
  const name = NAME.exec(text)?.[0];
  if (!name) throw new ExpositionError(line, `no metric name in ${JSON.stringify(text)}`);
  let rest = text.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    for (;;) {
      rest = rest.trimStart();
      if (rest.startsWith('}')) {
        rest = rest.slice(1);
        break;
      }
      const label = LABEL.exec(rest)?.[0];
      if (!label) throw new ExpositionError(line, `bad label name at ${JSON.stringify(rest)}`);
      rest = rest.slice(label.length);
      if (!rest.startsWith('="')) throw new ExpositionError(line, `label ${label}: expected ="`);
      const value = /^="((?:[^"\\\n]|\\.)*)"/.exec(rest);
      if (!value) throw new ExpositionError(line, `label ${label}: unterminated or badly escaped value`);
      if (label in labels) throw new ExpositionError(line, `label ${label} twice`);
      labels[label] = unescape(value[1]!, true);
      rest = rest.slice(value[0].length).trimStart();
      if (rest.startsWith(',')) rest = rest.slice(1);
      else if (!rest.startsWith('}')) throw new ExpositionError(line, `expected , or } after label ${label}`);
    }
  }
  const fields = rest.trim().split(/[ \t]+/);
  if (!rest.startsWith(' ') && !rest.startsWith('\t')) throw new ExpositionError(line, 'expected a space before the value');
  if (fields.length < 1 || fields.length > 2 || fields[0] === '') throw new ExpositionError(line, `expected "value [timestamp]", got ${JSON.stringify(rest)}`);
  if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) throw new ExpositionError(line, `bad timestamp ${fields[1]}`);
  return { name, labels, value: parseValue(fields[0]!, line) };
}

/** The family a sample name belongs to, given the families declared so far. */
function familyOf(name: string, families: ReadonlyMap<string, Family>): Family | undefined {
  const exact = families.get(name);
  if (exact) return exact;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const f = families.get(name.slice(0, -suffix.length));
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  const seen = new Set<string>();
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new ExpositionError(lines.length, 'the exposition must end with a newline');
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw.trim() === '') return;
    const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(raw);
    if (meta) {
      const [, kind, name, rest = ''] = meta;
      if (!NAME.test(name!) || NAME.exec(name!)![0] !== name) throw new ExpositionError(n, `bad metric name ${name}`);
      if (kind === 'HELP') {
        if (helps.has(name!)) throw new ExpositionError(n, `second HELP for ${name}`);
        helps.set(name!, unescape(rest, false));
        const f = families.get(name!);
        if (f) families.set(name!, { ...f, help: helps.get(name!)! });
        return;
      }
      const type = rest.trim() as MetricType;
      if (!TYPES.includes(type)) throw new ExpositionError(n, `unknown type ${rest} for ${name}`);
      if (families.has(name!)) throw new ExpositionError(n, `second TYPE for ${name}`);
      families.set(name!, { name: name!, type, help: helps.get(name!) ?? '', samples: [] });
      return;
    }
    if (raw.startsWith('#')) return; // a comment
    const sample = parseSample(raw, n);
    const family = familyOf(sample.name, families);
    if (!family) throw new ExpositionError(n, `sample ${sample.name} has no # TYPE before it`);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) throw new ExpositionError(n, `series ${key} appears twice`);
    seen.add(key);
    family.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      g.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
    } else if (s.name === `${f.name}_count`) g.count = s.value;
    else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else throw new Error(`${f.name}: stray sample ${s.name}`);
  }
  for (const [key, g] of groups) {
    const sorted = [...g.buckets].sort((a, b) => a[0] - b[0]);
    if (sorted.at(-1)?.[0] !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
    sorted.forEach(([le, v], i) => {
      if (i > 0 && v < sorted[i - 1]![1]) throw new Error(`${f.name}${key}: bucket le=${le} (${v}) below the one before: not cumulative`);
    });
    if (g.count === undefined || g.sum === undefined) throw new Error(`${f.name}${key}: _count or _sum missing`);
    if (sorted.at(-1)![1] !== g.count) throw new Error(`${f.name}${key}: +Inf bucket ${sorted.at(-1)![1]} != _count ${g.count}`);
  }
}

/** The value of the one series of `name` with exactly these labels (all of them); undefined when absent. */
export function valueOf(families: ReadonlyMap<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = familyOf(name, families);
  const want = JSON.stringify(Object.entries(labels).sort());
  return family?.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}

/** The sum over every series of `name` whose labels include `match`. */
export function sumOf(families: ReadonlyMap<string, Family>, name: string, match: Record<string, string> = {}): number {
  const family = familyOf(name, families);
  return (family?.samples ?? [])
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}
