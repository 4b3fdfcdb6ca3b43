// Reading a configuration file into a frozen `Config`, or into a ConfigError
// that lists every problem with file, line, column and key path. The master
// calls this on start and on every reload, and a reload must be refused with
// a message a person can act on, so all problems are gathered in one pass.

import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, isMap, isNode, isScalar, parseDocument, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { defaultControlSocket, socketPathProblem } from './control-path.js';
import { appModuleProblem, loaderProblem, loaders } from './app-module.js';
import { autoWorkers } from './cpu-quota.js';
import { configSchema, knownKeys, type ConfigDocument } from './schema.js';
import { ConfigError, type ConfigProblem } from './problems.js';
import type { Config, TlsFiles, TlsPairFiles } from './types.js';

export { ConfigError, formatProblem, type ConfigProblem } from './problems.js';

/** Reads and validates `file`. Throws ConfigError, also when the file cannot be read. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError([{ file, path: '', message: `cannot read: ${code}` }]);
  }
  return parseConfig(text, file);
}

type Path = readonly PropertyKey[];

/**
 * Validates a configuration given as an object (the programmatic API) with
 * the same schema and checks as a file. Problems name `label` and the key
 * path (there are no lines); relative paths resolve against `file`'s
 * directory, and the default control socket derives from `file`.
 */
export function parseConfigObject(value: unknown, file: string, label = file): Config {
  return validate(value, new Unlocated(label), file);
}

/**
 * `value` with its relative paths (app, cwd, TLS files, control socket) made
 * absolute against `dir`, so that it means the same wherever it is written.
 * (node_args are resolved by node against the workers' cwd, as in a file.)
 */
export function withAbsolutePaths(value: unknown, dir: string): unknown {
  if (!isRecord(value)) return value;
  const abs = (v: unknown): unknown => (typeof v === 'string' && v !== '' ? resolve(dir, v) : v);
  const absKeys = (o: unknown, keys: readonly string[]): unknown =>
    isRecord(o) ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, keys.includes(k) ? abs(v) : v])) : o;
  const out = absKeys(value, ['app', 'cwd']) as Record<string, unknown>;
  const listen = value['listen'];
  if (Array.isArray(listen)) {
    out['listen'] = listen.map((l: unknown) => {
      if (!isRecord(l) || !isRecord(l['tls'])) return l;
      const tls = absKeys(l['tls'], ['cert', 'key', 'ca']) as Record<string, unknown>;
      const sni = tls['sni'];
      if (isRecord(sni)) tls['sni'] = Object.fromEntries(Object.entries(sni).map(([name, pair]) => [name, absKeys(pair, ['cert', 'key'])]));
      return { ...l, tls };
    });
  }
  if (isRecord(value['control'])) out['control'] = absKeys(value['control'], ['socket']);
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Validates `text` as if read from `file`; relative paths in it are resolved against the file's directory. */
export function parseConfig(text: string, file: string): Config {
  const source = new Located(text, file);
  const { doc } = source;
  // Structure cannot be trusted after a syntax error, and schema complaints
  // about a half-parsed document would only bury the real mistake.
  if (doc.errors.length > 0) {
    for (const e of doc.errors) source.addAt(e.pos[0], '', e.message);
    throw source.error();
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // toJS fails on aliases (unknown anchor, alias bombs) without a position.
    source.addAt(source.unresolvedAliasOffset() ?? 0, '', err instanceof Error ? err.message : String(err));
    throw source.error();
  }

  return validate(raw ?? {}, source, file);
}

/** The schema, then the checks it cannot make (files exist, the socket path fits), all problems in one pass. */
function validate(raw: unknown, source: Problems, file: string): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) reportIssue(source, raw, issue);
  }
  const dir = dirname(resolve(file));
  checkReferencedFiles(source, raw, dir);
  const controlSocket = resolveControlSocket(source, raw, file, dir);
  if (!result.success || source.problems.length > 0 || controlSocket === undefined) {
    const err = source.error();
    err.controlSocket = controlSocket;
    throw err;
  }

  return deepFreeze(toConfig(result.data, resolve(file), dir, controlSocket));
}

function toConfig(d: ConfigDocument, file: string, dir: string, controlSocket: string): Config {
  return {
    file,
    app: resolve(dir, d.app),
    workers: d.workers === 'auto' ? autoWorkers() : d.workers,
    listen: d.listen.map((l) => ({
      address: l.address,
      backlog: l.backlog,
      v6only: l.v6only,
      ...(l.tls ? { tls: toTlsFiles(l.tls, dir) } : {}),
      http2: l.http2,
    })),
    reload: {
      strategy: d.reload.strategy,
      setTcpMigrateReq: d.reload.set_tcp_migrate_req,
      readyTimeoutMs: d.reload.ready_timeout,
      settleMs: d.reload.settle,
      drainTimeoutMs: d.reload.drain_timeout,
      watch: d.reload.watch,
    },
    restart: {
      minUptimeMs: d.restart.min_uptime,
      backoffMs: d.restart.backoff,
      backoffMaxMs: d.restart.backoff_max,
    },
    tls: { rotate: d.tls.rotate, warnBeforeMs: d.tls.warn_before, pairWaitMs: d.tls.pair_wait },
    stopDelayMs: d.stop_delay,
    ...(d.metrics ? { metrics: { listen: d.metrics.listen } } : {}),
    controlSocket,
    ...(d.user !== undefined ? { user: d.user } : {}),
    ...(d.group !== undefined ? { group: d.group } : {}),
    log: { level: d.log.level, format: d.log.format },
    env: { ...d.env },
    nodeArgs: [...d.node_args],
    ...(d.cwd !== undefined ? { cwd: resolve(dir, d.cwd) } : {}),
  };
}

type TlsDocument = NonNullable<ConfigDocument['listen'][number]['tls']>;

function toTlsPair(p: { cert: string; key: string; passphrase?: string | undefined }, dir: string): TlsPairFiles {
  return { cert: resolve(dir, p.cert), key: resolve(dir, p.key), ...(p.passphrase !== undefined ? { passphrase: p.passphrase } : {}) };
}

function toTlsFiles(t: TlsDocument, dir: string): TlsFiles {
  return {
    ...toTlsPair(t, dir),
    ...(t.ca !== undefined ? { ca: resolve(dir, t.ca) } : {}),
    sni: Object.entries(t.sni).map(([name, pair]) => ({ name: name.toLowerCase(), ...toTlsPair(pair, dir) })),
  };
}

/** Where problems are collected: pinned to lines of a file, or (for an object) to key paths only. */
interface Problems {
  readonly problems: ConfigProblem[];
  add(path: Path, message: string, atKey?: boolean): void;
  error(): ConfigError;
}

class Unlocated implements Problems {
  readonly problems: ConfigProblem[] = [];

  constructor(readonly file: string) {}

  add(path: Path, message: string): void {
    this.problems.push({ file: this.file, path: dotted(path), message });
  }

  error(): ConfigError {
    return new ConfigError(this.problems);
  }
}

/** One YAML document plus the problems found in it, each pinned to a line. */
class Located implements Problems {
  readonly doc: Document.Parsed;
  readonly problems: ConfigProblem[] = [];
  private readonly lines = new LineCounter();

  constructor(
    text: string,
    readonly file: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
  }

  /** At the node for `path`, or the nearest ancestor that exists (a missing key points at its parent). */
  add(path: Path, message: string, atKey = false): void {
    const offset = (atKey ? this.keyOffset(path) : undefined) ?? this.nodeOffset(path);
    this.addAt(offset, dotted(path), message);
  }

  addAt(offset: number | undefined, path: string, message: string): void {
    if (offset === undefined) {
      this.problems.push({ file: this.file, path, message });
      return;
    }
    const { line, col } = this.lines.linePos(offset);
    this.problems.push({ file: this.file, line, column: col, path, message });
  }

  unresolvedAliasOffset(): number | undefined {
    let offset: number | undefined;
    visit(this.doc, {
      Alias: (_, node) => {
        if (node.resolve(this.doc) !== undefined) return undefined;
        offset = node.range?.[0];
        return visit.BREAK;
      },
    });
    return offset;
  }

  error(): ConfigError {
    const order = (p: ConfigProblem) => (p.line ?? 0) * 1e6 + (p.column ?? 0);
    return new ConfigError([...this.problems].sort((a, b) => order(a) - order(b)));
  }

  private nodeOffset(path: Path): number {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return node.range[0];
    }
    return 0; // an empty document: the top of the file
  }

  /** Where the key itself is written, for problems with the key rather than its value. */
  private keyOffset(path: Path): number | undefined {
    const parent = path.length === 1 ? this.doc.contents : this.doc.getIn(path.slice(0, -1), true);
    if (!isMap(parent)) return undefined;
    const name = String(path[path.length - 1]);
    const pair = parent.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === name);
    return isNode(pair?.key) ? pair.key.range?.[0] : undefined;
  }
}

function reportIssue(source: Problems, raw: unknown, issue: z.core.$ZodIssue): void {
  if (issue.code === 'unrecognized_keys') {
    for (const key of issue.keys) {
      const hint = closest(key, knownKeys(issue.path));
      source.add([...issue.path, key], `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`, true);
    }
    return;
  }
  if (issue.code === 'invalid_key') {
    source.add(issue.path, issue.issues[0]?.message ?? issue.message, true);
    return;
  }
  const missing = issue.code === 'invalid_type' && valueAt(raw, issue.path) === undefined;
  source.add(issue.path, missing ? 'is required' : issue.message.replace(/^Invalid input: /, ''));
}

/** app and TLS files must exist now: a reload must not commit to files that are not there. */
function checkReferencedFiles(source: Problems, raw: unknown, dir: string): void {
  const check = (path: Path, what: string): void => {
    const value = valueAt(raw, path);
    if (typeof value !== 'string' || value === '') return; // the schema reports it
    const abs = resolve(dir, value);
    const st = statSync(abs, { throwIfNoEntry: false });
    if (!st) return source.add(path, `${what} not found: ${abs}`);
    if (!st.isFile()) return source.add(path, `${what} is not a file: ${abs}`);
    try {
      accessSync(abs, constants.R_OK);
    } catch (err) {
      source.add(path, `${what} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}: ${abs}`);
    }
  };
  check(['app'], 'app file');
  checkWorkerProcess(source, raw, dir);
  const listen = valueAt(raw, ['listen']);
  if (!Array.isArray(listen)) return;
  listen.forEach((_, i) => {
    check(['listen', i, 'tls', 'cert'], 'certificate file');
    check(['listen', i, 'tls', 'key'], 'key file');
    check(['listen', i, 'tls', 'ca'], 'CA file');
    const sni = valueAt(raw, ['listen', i, 'tls', 'sni']);
    for (const name of sni !== null && typeof sni === 'object' ? Object.keys(sni) : []) {
      check(['listen', i, 'tls', 'sni', name, 'cert'], 'certificate file');
      check(['listen', i, 'tls', 'sni', name, 'key'], 'key file');
    }
  });
}

/** cwd must be a directory; the app's extension must be one the workers' node can load with node_args. */
function checkWorkerProcess(source: Problems, raw: unknown, dir: string): void {
  const cwdValue = valueAt(raw, ['cwd']);
  let cwd: string | undefined = process.cwd();
  if (typeof cwdValue === 'string' && cwdValue !== '') {
    cwd = resolve(dir, cwdValue);
    const st = statSync(cwd, { throwIfNoEntry: false });
    if (!st?.isDirectory()) {
      source.add(['cwd'], `${st ? 'not a directory' : 'directory not found'}: ${cwd}`);
      cwd = undefined;
    }
  }
  const args = valueAt(raw, ['node_args']);
  const nodeArgs = Array.isArray(args) && args.every((a) => typeof a === 'string') ? (args as string[]) : [];
  const app = valueAt(raw, ['app']);
  if (typeof app === 'string' && app !== '') {
    const problem = appModuleProblem(resolve(dir, app), nodeArgs);
    if (problem) source.add(['app'], problem);
  }
  if (cwd === undefined) return;
  for (const { index, specifier } of loaders(nodeArgs)) {
    const problem = loaderProblem(specifier, cwd);
    if (problem) source.add(['node_args', index], problem);
  }
}

function resolveControlSocket(source: Problems, raw: unknown, file: string, dir: string): string | undefined {
  const explicit = valueAt(raw, ['control', 'socket']);
  if (explicit !== undefined) {
    if (typeof explicit !== 'string' || explicit === '') return undefined; // the schema reports it
    const path = resolve(dir, explicit);
    const problem = socketPathProblem(path);
    if (problem) source.add(['control', 'socket'], problem);
    return problem ? undefined : path;
  }
  try {
    return defaultControlSocket(file);
  } catch (err) {
    source.add(['control', 'socket'], err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

function valueAt(raw: unknown, path: Path): unknown {
  let value = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function dotted(path: Path): string {
  return path.map(String).join('.');
}

/** The known key within a small edit distance of a misspelt one. */
function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next.push(Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost));
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
