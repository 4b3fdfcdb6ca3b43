// What an app's `server.listen(...)` asks for, read the way Node's own
// `net.Server.prototype.listen` reads its arguments (lib/net.js
// `normalizeArgs`): `(port[, host][, backlog][, cb])`, `(options[, cb])`,
// `([cb])`. Only TCP port requests are ours to answer; a pipe path, a
// handle or an `{ fd }` is passed through to Node untouched (handover's own
// servers listen with `{ fd }`).

export interface ListenRequest {
  /** 0 when the app asked for any free port (`listen()`, `listen(0)`, `{ port: undefined }`). */
  readonly port: number;
  /** As the app wrote it; undefined for Node's default (all interfaces). */
  readonly host: string | undefined;
  readonly callback: ((...args: unknown[]) => void) | undefined;
  readonly signal: AbortSignal | undefined;
}

type Options = Record<string, unknown>;

/** Node's `toNumber`: a number >= 0, or false. */
function toNumber(value: unknown): number | false {
  const n = Number(value);
  return n >= 0 ? n : false;
}

function isPipeName(value: unknown): boolean {
  return typeof value === 'string' && toNumber(value) === false;
}

function isValidPort(port: unknown): boolean {
  if (typeof port !== 'number' && typeof port !== 'string') return false;
  if (typeof port === 'string' && port.trim() === '') return false;
  const n = Number(port);
  return Number.isInteger(n) && n >= 0 && n <= 65535;
}

/**
 * The TCP port request in `args`, or undefined when Node should handle the
 * call itself: pipes, handles, descriptors, and arguments Node rejects (it
 * then throws its own synchronous error, as it would without handover).
 */
export function listenRequest(args: readonly unknown[]): ListenRequest | undefined {
  const last = args[args.length - 1];
  const callback = typeof last === 'function' ? (last as (...a: unknown[]) => void) : undefined;
  const first = args[0];
  let options: Options;
  if (first !== null && typeof first === 'object') {
    options = first as Options;
  } else if (isPipeName(first)) {
    return undefined;
  } else {
    options = { port: typeof first === 'function' ? undefined : first };
    if (args.length > 1 && typeof args[1] === 'string') options['host'] = args[1];
  }
  const target = (options['_handle'] ?? options['handle'] ?? options) as Options;
  if (target !== options) return undefined; // listen(handle) or listen({ handle })
  if (typeof options['fd'] === 'number' && options['fd'] >= 0) return undefined;
  if (options['path'] !== undefined && options['port'] === undefined) return undefined;
  const anyPort =
    args.length === 0 || typeof first === 'function' || first === null || first === undefined ||
    ('port' in options && (options['port'] === undefined || options['port'] === null));
  if (!anyPort && !isValidPort(options['port'])) return undefined;
  const host = options['host'];
  const signal = options['signal'];
  return {
    port: anyPort ? 0 : Number(options['port']),
    host: typeof host === 'string' && host !== '' ? host : undefined,
    callback,
    signal: signal instanceof AbortSignal ? signal : undefined,
  };
}

const WILDCARDS = new Set(['::', '0.0.0.0', '[::]']);

/** Whether `host` means "every interface" (Node's default when none is given). */
export function isWildcard(host: string | undefined): boolean {
  return host === undefined || WILDCARDS.has(host);
}

/** Whether a configured address host satisfies the host an app asked for. */
export function hostMatches(requested: string, configured: string): boolean {
  const bare = requested.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost') return configured === '127.0.0.1' || configured === '::1';
  return bare === configured.toLowerCase();
}
