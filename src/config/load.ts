// Reading a configuration file into a frozen `Config`, or into a ConfigError
// that lists every problem with file, line, column and key path. The master
// calls this on start and on every reload, and a reload must be refused with
// a message a person can act on, so all problems are gathered in one pass.

import { dirname, resolve } from 'node:path';
import { LineCounter, isMap, isNode, isScalar, parseDocument, visit, type Document } from '../vendor/yaml.js';
import type * as z from '../vendor/zod.js';
import { controlDir, controlDirProblem, defaultControlSocket, socketPathProblem } from './control-path.js';
import { appModuleProblem, loaderProblem, loaders } from './app-module.js';
import { autoWorkers } from './cpu-quota.js';
import { controlSocketProblem, directoryProblem, FileProblem, readConfigText, referencedFileProblem } from './files.js';
import { MAX_CONFIG_BYTES, MAX_PROBLEMS, WORKERS_PER_CPU_WARNING } from './limits.js';
import { configSchema, knownKeys, type ConfigDocument } from './schema.js';
import { checkStructure } from './structure.js';
import { ConfigError, formatProblem, type ConfigProblem } from './problems.js';
import type { Config, TlsFiles, TlsPairFiles } from './types.js';

export { ConfigError, formatProblem, ResourceShortage, type ConfigProblem } from './problems.js';

/**
 * Reads and validates `file`. Throws ConfigError, also when the file cannot
 * be read or is larger than MAX_CONFIG_BYTES; ResourceShortage when a file
 * could not be read for want of descriptors or memory. Synchronous: up to a
 * few seconds of CPU for a 1 MiB file; the master reloads with loadConfigAsync.
 */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readConfigText(file);
  } catch (err) {
    if (!(err instanceof FileProblem)) throw err;
    throw new ConfigError([{ file, ...err.at, path: '', message: err.message }]);
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
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) {
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: `the text is ${bytes} bytes; a configuration may have at most ${MAX_CONFIG_BYTES} (1 MiB)` }]);
  }
  const source = new Located(text, file);
  const { doc } = source;
  // Structure cannot be trusted after a syntax error, and schema complaints
  // about a half-parsed document would only bury the real mistake.
  if (doc.errors.length > 0) {
    for (const e of doc.errors) source.addAt(e.pos[0], '', syntaxMessage(e.message));
    throw source.error();
  }
  const { tooDeep } = checkStructure(doc, (offset, path, message) => source.addAt(offset, dotted(path), message), (offset) => source.lineOf(offset));
  if (tooDeep) throw source.error();
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
  // jitless: zod would otherwise generate (new Function) and compile a
  // parser for each object shape on first use, which a file parsed once per
  // process never pays back (a cold `handover check`: 11 -> 7 ms).
  const result = configSchema.safeParse(raw, { jitless: true });
  if (!result.success) {
    for (const issue of byPriority(result.error.issues)) reportIssue(source, raw, issue);
  }
  const dir = dirname(resolve(file));
  checkReferencedFiles(source, raw, dir);
  const controlSocket = resolveControlSocket(source, raw, file, dir);
  if (!result.success || source.problems.length > 0 || controlSocket === undefined) {
    const err = source.error();
    err.controlSocket = controlSocket;
    throw err;
  }

  return deepFreeze(toConfig(result.data, resolve(file), dir, controlSocket, warnings(source, result.data)));
}

/** What is allowed but probably a mistake; formatted like problems, for the master's log and `check`. */
function warnings(source: Problems, d: ConfigDocument): string[] {
  const out: string[] = [];
  const cpus = autoWorkers();
  if (d.workers !== 'auto' && d.workers > WORKERS_PER_CPU_WARNING * cpus) {
    out.push(
      source.format(['workers'], `${d.workers} workers on ${cpus} CPU${cpus === 1 ? '' : 's'} available: more than ${WORKERS_PER_CPU_WARNING} per CPU only queue for the CPU and cost memory`),
    );
  }
  return out;
}

/** yaml reports a document nested too deep for its recursive composer as a stack overflow. */
function syntaxMessage(message: string): string {
  return /Maximum call stack size exceeded/.test(message) ? 'nested too deeply to parse' : message;
}

/**
 * Bounds first: a count over its limit explains the flood of problems that
 * may follow it. A value of the wrong type gets that one problem, not also
 * the checks zod went on to run on it (`key: []` is not also "empty").
 */
function byPriority(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const bound = (i: z.core.$ZodIssue): boolean => i.code === 'too_big' || (i.code === 'custom' && i.params?.['bound'] === true);
  const mistyped = new Set(issues.filter((i) => i.code === 'invalid_type').map((i) => dotted(i.path)));
  const kept = issues.filter((i) => i.code === 'invalid_type' || !mistyped.has(dotted(i.path)));
  return [...kept.filter(bound), ...kept.filter((i) => !bound(i))];
}

function toConfig(d: ConfigDocument, file: string, dir: string, controlSocket: string, warnings: readonly string[]): Config {
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
    warnings,
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
  /** No more problems will be kept (checks that cost a search may skip their work). */
  readonly full: boolean;
  add(path: Path, message: string, atKey?: boolean): void;
  /** `where: path: message`, for warnings. */
  format(path: Path, message: string): string;
  error(): ConfigError;
}

class Unlocated implements Problems {
  readonly problems: ConfigProblem[] = [];

  constructor(readonly file: string) {}

  get full(): boolean {
    return this.problems.length >= MAX_PROBLEMS;
  }

  add(path: Path, message: string): void {
    if (!this.full) this.problems.push({ file: this.file, path: dotted(path), message });
  }

  format(path: Path, message: string): string {
    return formatProblem({ file: this.file, path: dotted(path), message });
  }

  error(): ConfigError {
    return new ConfigError(this.problems);
  }
}

/** One YAML document plus the problems found in it, each pinned to a line. */
class Located implements Problems {
  readonly doc: Document.Parsed;
  readonly problems: ConfigProblem[] = [];
  /** Problems beyond MAX_PROBLEMS: counted, not located (locating each one costs a search of its map). */
  private omitted = 0;
  private readonly lines = new LineCounter();

  constructor(
    text: string,
    readonly file: string,
  ) {
    // Duplicate keys are found by checkStructure: yaml's own check is quadratic.
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: false });
  }

  /** At the node for `path`, or the nearest ancestor that exists (a missing key points at its parent). */
  add(path: Path, message: string, atKey = false): void {
    if (!this.room()) return;
    const offset = (atKey ? this.keyOffset(path) : undefined) ?? this.nodeOffset(path);
    this.addAt(offset, dotted(path), message);
  }

  /** `file:line:col: path: message` at the node for `path`, for warnings. */
  format(path: Path, message: string): string {
    const { line, col } = this.lines.linePos(this.nodeOffset(path));
    return formatProblem({ file: this.file, line, column: col, path: dotted(path), message });
  }

  lineOf(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  /** No more problems will be located (checks that cost a search may skip their work). */
  get full(): boolean {
    return this.problems.length >= MAX_PROBLEMS;
  }

  /** Counts a problem that has no room left; true when there is room. */
  private room(): boolean {
    if (!this.full) return true;
    this.omitted++;
    return false;
  }

  addAt(offset: number | undefined, path: string, message: string): void {
    if (!this.room()) return;
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
    const sorted = [...this.problems].sort((a, b) => order(a) - order(b));
    if (this.omitted > 0) sorted.push({ file: this.file, path: '', message: `and ${this.omitted} more problem${this.omitted === 1 ? '' : 's'} not shown` });
    return new ConfigError(sorted);
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
    if (typeof value !== 'string' || value === '' || value.includes('\0')) return; // the schema reports it
    const problem = referencedFileProblem(resolve(dir, value), what);
    if (problem) source.add(path, problem);
  };
  check(['app'], 'app file');
  checkWorkerProcess(source, raw, dir);
  const listen = valueAt(raw, ['listen']);
  if (!Array.isArray(listen) || source.full) return;
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
    const problem = directoryProblem(cwd);
    if (problem) {
      source.add(['cwd'], problem);
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

/**
 * The control socket's path, checked the way the master will use it: a
 * socket path that fits, nothing but a (stale) socket there, and a directory
 * it can be created in. Problems of the default path point at the top of
 * the file (no key names it) and say it is the default.
 */
function resolveControlSocket(source: Problems, raw: unknown, file: string, dir: string): string | undefined {
  const key = ['control', 'socket'];
  const explicit = valueAt(raw, key);
  if (explicit !== undefined) {
    if (typeof explicit !== 'string' || explicit === '') return undefined; // the schema reports it
    const path = resolve(dir, explicit);
    const problem = socketPathProblem(path);
    if (problem) source.add(key, problem);
    if (problem) return undefined;
    const unusable = controlSocketProblem(path);
    if (unusable) source.add(key, unusable);
    return path;
  }
  let path: string;
  try {
    path = defaultControlSocket(file);
  } catch (err) {
    source.add(key, err instanceof Error ? err.message : String(err));
    return undefined;
  }
  // The shared fallback directory must be ours and private (ensureControlDir
  // makes it at start); what exists of it now is checked already.
  const sharedDir = dirname(path) === controlDir() && !process.env['RUNTIME_DIRECTORY'];
  const problem = (sharedDir ? controlDirProblem(dirname(path)) : undefined) ?? controlSocketProblem(path);
  if (problem) source.add(key, `default control socket: ${problem}`);
  return path;
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

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
