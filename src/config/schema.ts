// The YAML configuration, described once. Validation, defaults and the JSON
// Schema that editors and the README's reference use all come from here, so
// they cannot drift apart. Keys are snake_case as users write them; load.ts
// maps the result to the camelCase `Config`.

import * as z from '../vendor/zod.js';
import {
  ADDRESS_HINT,
  DURATION_HINT,
  DURATION_PATTERN,
  MAX_DURATION_MS,
  parseAddress,
  parseDuration,
} from './notation.js';
import { MAX_ENV, MAX_ENV_ENTRY_BYTES, MAX_LISTEN, MAX_WORKERS } from './limits.js';
import type { SocketAddress } from './types.js';

export const STRATEGIES = ['auto', 'bpf', 'migrate', 'drain', 'inherit', 'none'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty', 'journal'] as const;

/**
 * Cross-field refinements run even when a sibling value failed, so that one
 * pass reports every problem. Their argument may then be anything the user
 * wrote (or zod's placeholder for a failed field), whatever its static type
 * says, so they check before reading.
 */
const always = { when: () => true };

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

/** The parsed address of a listener-like value, or undefined if it did not parse. */
function addressOf(value: unknown): SocketAddress | undefined {
  const a = isRecord(value) ? value['address'] : undefined;
  return isRecord(a) && typeof a['text'] === 'string' && typeof a['port'] === 'number' ? (a as unknown as SocketAddress) : undefined;
}

const address = z
  .string({ error: ADDRESS_HINT })
  .transform((text, ctx): SocketAddress => {
    const parsed = parseAddress(text);
    if (parsed.ok) return parsed.value;
    ctx.addIssue({ code: 'custom', message: parsed.message, input: text });
    return z.NEVER;
  })
  .meta({ description: 'host:port with a literal IP (or localhost); IPv6 in brackets; port 0 picks a free port', examples: ['127.0.0.1:8080', '[::]:443'] });

const durationUpTo = (maxMs: number) =>
  z
    .union([z.string().regex(DURATION_PATTERN, DURATION_HINT), z.number().min(0, DURATION_HINT)], { error: DURATION_HINT })
    .transform((value, ctx): number => {
      const parsed = parseDuration(value, maxMs);
      if (parsed.ok) return parsed.value;
      ctx.addIssue({ code: 'custom', message: parsed.message, input: value });
      return z.NEVER;
    });
const duration = durationUpTo(MAX_DURATION_MS);

/** Defaults are given in the notation users write, so the JSON Schema shows "10s", not 10000. */
function durationWithDefault(fallback: string, description: string) {
  return duration.prefault(fallback).meta({ description: `${description} (max ${MAX_DURATION_MS} ms)`, examples: ['500ms', '10s', '2m'] });
}

/** How far ahead a certificate's expiry is announced: never a timer, so longer than a timer may wait. */
export const MAX_WARN_BEFORE_MS = 400 * 86_400_000;

const path = (what: string) => z.string({ error: `expected a path to the ${what}` }).min(1, 'must not be empty');

const pairKeys = {
  cert: path('certificate chain (PEM)').meta({ description: 'certificate chain, PEM, leaf first; relative to this file' }),
  key: path('private key (PEM)').meta({ description: 'private key, PEM; read by the master only' }),
  passphrase: z
    .string({ error: 'expected the passphrase of the key, as a string' })
    .min(1, 'must not be empty')
    .optional()
    .meta({ description: 'passphrase of an encrypted key; the master decrypts it, workers never see it' }),
};

/** A DNS name, or a wildcard of one label (`*.example.org`); SNI carries names, never IP addresses. */
const SNI_NAME = /^(\*\.)?(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/;
const SNI_HINT = 'expected a host name such as example.com, or a wildcard such as *.example.org';

const tls = z
  .strictObject({
    ...pairKeys,
    ca: path('CA certificates (PEM)')
      .optional()
      .meta({ description: 'CA certificates, PEM: clients must present a certificate they issued (requestCert)' }),
    sni: z
      .record(z.string().regex(SNI_NAME, SNI_HINT), z.strictObject(pairKeys), { error: 'expected a map of host names to { cert, key }' })
      .default({})
      .meta({ description: 'certificates per server name (SNI); the top-level pair serves every other name' }),
  })
  .superRefine((t, ctx) => {
    const seen = new Map<string, string>();
    for (const name of isRecord(t) && isRecord(t.sni) ? Object.keys(t.sni) : []) {
      const folded = name.toLowerCase();
      const first = seen.get(folded);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['sni', name], message: `duplicate server name (also "${first}"; names are case-insensitive)` });
      else seen.set(folded, name);
    }
  }, always)
  .meta({ description: 'serve HTTPS on this address' });

const ROTATIONS = ['new-generation', 'in-place'] as const;

const tlsSettings = z
  .strictObject({
    rotate: z
      .enum(ROTATIONS, { error: `must be one of ${ROTATIONS.join(', ')}` })
      .default('new-generation')
      .meta({ description: 'a certificate change starts a new generation, or (in-place) swaps the running workers\' secure context' }),
    warn_before: durationUpTo(MAX_WARN_BEFORE_MS)
      .prefault('14d')
      .meta({ description: 'warn (at start, at every reload and daily) when a certificate expires within this', examples: ['14d', '30d'] }),
    pair_wait: durationWithDefault('10s', 'how long changed TLS files may take to form a valid set (a key written after its certificate) before the change is refused'),
  })
  .prefault({});

const listener = z
  .strictObject({
    address,
    backlog: z
      .int('must be an integer from 1 to 65535')
      .min(1, 'must be from 1 to 65535')
      .max(65535, 'must be from 1 to 65535')
      .default(511)
      .meta({ description: 'accept queue length; the kernel caps it at net.core.somaxconn' }),
    v6only: z.boolean().default(false).meta({ description: 'IPv6 only: do not also accept IPv4-mapped connections' }),
    tls: tls.optional(),
    http2: z
      .boolean()
      .default(false)
      .meta({ description: 'offer HTTP/2 by ALPN (h2, then http/1.1) on this TLS address; one request listener serves both' }),
  })
  .superRefine((l, ctx) => {
    const addr = addressOf(l);
    if (isRecord(l) && l.v6only === true && addr?.family === 4) {
      ctx.addIssue({ code: 'custom', path: ['v6only'], message: `applies to IPv6 addresses only, and ${addr.text} is IPv4` });
    }
    if (isRecord(l) && l.http2 === true && l.tls === undefined) {
      ctx.addIssue({ code: 'custom', path: ['http2'], message: 'needs tls on this address: HTTP/2 is offered over TLS only (no cleartext h2c)' });
    }
  }, always);

const listeners = z
  .array(listener, { error: 'expected a list of listeners, e.g. "- address: 127.0.0.1:8080"' })
  .min(1, 'at least one listen address is needed')
  .max(MAX_LISTEN, `at most ${MAX_LISTEN} listen addresses`)
  .superRefine((list, ctx) => {
    // Port 0 included: a reload matches old and new listeners by address, so
    // two "127.0.0.1:0" entries could not be told apart (each would need its
    // own resolved port, and a reload would not know which is which).
    const first = new Map<string, number>();
    if (!Array.isArray(list)) return;
    list.forEach((l: unknown, i) => {
      const addr = addressOf(l);
      if (!addr) return;
      const seen = first.get(addr.text);
      if (seen === undefined) first.set(addr.text, i);
      else ctx.addIssue({ code: 'custom', path: [i, 'address'], message: `duplicate listen address ${addr.text} (also listen.${seen}.address)` });
    });
  }, always);

const reload = z
  .strictObject({
    strategy: z
      .enum(STRATEGIES, { error: `must be one of ${STRATEGIES.join(', ')}` })
      .default('auto')
      .meta({ description: 'how queued connections move to the new generation; auto picks the best the kernel allows' }),
    set_tcp_migrate_req: z
      .boolean()
      .default(false)
      .meta({ description: 'let the master set the namespace-wide sysctl net.ipv4.tcp_migrate_req=1' }),
    ready_timeout: durationWithDefault('10s', 'how long new workers may take to report ready before the reload rolls back'),
    settle: durationWithDefault('1s', "both generations serve this long after the new workers are ready; a new worker dying meanwhile rolls the reload back (like PM2's min_uptime); certificate-only rotations skip it"),
    drain_timeout: durationWithDefault('30s', 'how long old workers may finish in-flight requests before they are killed'),
    watch: z.boolean().default(true).meta({ description: 'reload when this file or a TLS file it names changes (their directories are watched)' }),
  })
  .prefault({});

const restart = z
  .strictObject({
    min_uptime: durationWithDefault('5s', 'a worker that served this long is replaced at once; earlier deaths back off'),
    backoff: durationWithDefault('100ms', 'first delay before restarting a worker that died early; doubles per early death'),
    backoff_max: durationWithDefault('10s', 'cap of the restart backoff'),
  })
  .prefault({});

const envName = z.string().regex(/^[^=\0]+$/, 'environment variable names cannot be empty or contain "=" or NUL');
// YAML reads `PORT: 8080` as a number; the environment only has strings, and
// making users quote every number would be pedantry with no safety gain.
const envValue = z
  .union([z.string(), z.number(), z.boolean()], { error: 'must be a string' })
  .transform(String)
  .refine((v) => !v.includes('\0'), 'environment values cannot contain NUL');

/**
 * The count first: past it, every entry's own problems are noise. `bound`
 * marks issues the loader reports before all others.
 */
function boundEnv(env: unknown, ctx: z.core.$RefinementCtx<Record<string, string>>): void {
  if (!isRecord(env)) return;
  const names = Object.keys(env);
  if (names.length > MAX_ENV) {
    ctx.addIssue({ code: 'custom', message: `has ${names.length} entries; at most ${MAX_ENV} are allowed`, params: { bound: true } });
    return;
  }
  for (const name of names) {
    const value = env[name];
    const bytes = Buffer.byteLength(name) + 1 + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
    if (bytes > MAX_ENV_ENTRY_BYTES) {
      ctx.addIssue({ code: 'custom', path: [name], message: `${name}=... is ${bytes} bytes; the kernel refuses an environment string over ${MAX_ENV_ENTRY_BYTES} (E2BIG)`, params: { bound: true } });
    }
  }
}

// One argument per item, as execArgv takes them: "--import tsx" in one item
// would reach Node as a single unknown option.
const nodeArg = z
  .string({ error: 'expected a Node.js option, e.g. "--max-old-space-size=512"' })
  .min(1, 'must not be empty')
  .refine((v) => !v.includes('\0'), 'node arguments cannot contain NUL')
  .refine((v) => !(v.startsWith('-') && /\s/.test(v)), 'one argument per item: write ["--import", "tsx"] or "--import=tsx"');

const account = (what: string) =>
  z
    .union([z.string().min(1, 'must not be empty'), z.int().min(0, 'must not be negative')], { error: `expected a ${what} name or id` })
    .transform(String);

export const configSchema = z
  .strictObject({
    app: path('app module')
      .meta({ description: 'the app module: a request listener, { handler }, or a file that listens itself; relative to this file' }),
    workers: z
      .union([z.literal('auto'), z.int('must be a whole number').min(1, 'must be at least 1').max(MAX_WORKERS, `must be at most ${MAX_WORKERS}`)], {
        error: 'must be a positive integer or "auto"',
      })
      .default('auto')
      .meta({ description: 'worker processes; auto = CPUs available, honouring the cgroup CPU quota' }),
    listen: listeners.meta({ description: 'addresses to serve; each worker gets its own SO_REUSEPORT socket per address' }),
    reload,
    restart,
    tls: tlsSettings.meta({ description: 'certificate rotation and expiry warnings, for every TLS address' }),
    stop_delay: durationWithDefault('0s', 'keep serving this long after SIGTERM so a load balancer can take the host out'),
    metrics: z
      .strictObject({ listen: address })
      .optional()
      .meta({ description: 'Prometheus endpoint; off when absent' }),
    control: z
      .strictObject({ socket: path('control socket').meta({ description: 'Unix socket path, at most 107 bytes; relative to this file' }) })
      .optional()
      .meta({ description: 'control socket for reload/stop/status; default is derived from this file\'s path' }),
    user: account('user').optional().meta({ description: 'run workers as this user (needs root)' }),
    group: account('group').optional().meta({ description: 'run workers with this group (needs root)' }),
    log: z
      .strictObject({
        level: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
        format: z
          .enum(LOG_FORMATS, { error: `must be one of ${LOG_FORMATS.join(', ')}` })
          .default('auto')
          .meta({
            description:
              'json lines; pretty (human-readable); journal (one line per event with a <N> syslog priority prefix, for journalctl -p); auto = journal when stdout is the journal ($JOURNAL_STREAM), pretty on a terminal, else json',
          }),
      })
      .prefault({}),
    node_args: z
      .array(nodeArg, { error: 'expected a list of Node.js options, e.g. ["--max-old-space-size=512"]' })
      .default([])
      .meta({ description: 'options for the workers\' node, e.g. ["--max-old-space-size=512"]; ["--import", "tsx"] runs TypeScript (development)' }),
    cwd: path('working directory')
      .optional()
      .meta({ description: 'the workers\' working directory (where --import specifiers resolve); relative to this file; default: the master\'s' }),
    env: z
      .record(envName, envValue, {
        // Only for a wrong type: a bad key or value keeps its own message.
        error: (issue) => (issue.code === 'invalid_type' ? 'expected a map of environment variables, e.g. { NODE_ENV: production }' : undefined),
      })
      .superRefine(boundEnv, always)
      .default({})
      .meta({ description: `extra environment for the workers (at most ${MAX_ENV} entries)`, maxProperties: MAX_ENV }),
  })
  .superRefine((c, ctx) => {
    const metrics = isRecord(c.metrics) ? addressOf({ address: c.metrics.listen }) : undefined;
    const listen: readonly unknown[] = Array.isArray(c.listen) ? c.listen : [];
    if (metrics && metrics.port !== 0 && listen.some((l) => addressOf(l)?.text === metrics.text)) {
      ctx.addIssue({ code: 'custom', path: ['metrics', 'listen'], message: `${metrics.text} is also a listen address` });
    }
  }, always);

export type ConfigInput = z.input<typeof configSchema>;
export type ConfigDocument = z.output<typeof configSchema>;

/** A JSON Schema node, as far as this module reads one. */
export interface JsonSchemaNode {
  readonly properties?: Readonly<Record<string, JsonSchemaNode>>;
  readonly items?: JsonSchemaNode;
  readonly anyOf?: readonly JsonSchemaNode[];
  readonly [key: string]: unknown;
}

let jsonSchema: JsonSchemaNode | undefined;

/**
 * The input side (what users write, with defaults in their notation), for
 * `# yaml-language-server: $schema=…` and the generated README reference.
 */
export function configJsonSchema(): JsonSchemaNode {
  jsonSchema ??= z.toJSONSchema(configSchema, { io: 'input' }) as JsonSchemaNode;
  return jsonSchema;
}

/** The keys a mapping accepts at `path` (array indexes skipped), for "did you mean" hints. */
export function knownKeys(path: readonly PropertyKey[]): readonly string[] {
  let node: JsonSchemaNode | undefined = configJsonSchema();
  for (const segment of path) {
    if (!node) return [];
    node = typeof segment === 'number' ? node.items : objectBranch(node)?.properties?.[String(segment)];
  }
  return Object.keys((node && objectBranch(node))?.properties ?? {});
}

function objectBranch(node: JsonSchemaNode): JsonSchemaNode | undefined {
  if (node.properties) return node;
  return node.anyOf?.find((n) => n.properties !== undefined);
}
