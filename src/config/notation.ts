// The configuration's own small notations: `host:port` socket addresses and
// durations. Each parser returns a result instead of throwing so that the
// schema can turn a failure into an issue located at the offending key.

import { isIP } from 'node:net';
import type { SocketAddress } from './types.js';

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

export const ADDRESS_HINT = 'expected host:port, e.g. 127.0.0.1:8080 or [::]:443';
export const DURATION_HINT = 'expected a duration such as "500ms", "10s", "2m", "1h", "14d" or a number of seconds';

/**
 * Node's timers fire at once (with a warning) when given more than a signed
 * 32-bit number of milliseconds, so a larger deadline would silently become
 * no deadline at all.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const BRACKETED = /^\[([^\]]+)\]:([^:]*)$/;
const UNBRACKETED = /^([^:[\]]+):([^:]*)$/;

/**
 * Parses `127.0.0.1:8080`, `[::]:443` or `localhost:8080`. Only literal IP
 * addresses are accepted (plus `localhost`, which means 127.0.0.1): binding
 * must not depend on DNS, and a name that resolves to several addresses
 * would silently bind only one of them.
 */
export function parseAddress(text: string): Parsed<SocketAddress> {
  const bracketed = BRACKETED.exec(text);
  const plain = bracketed ? null : UNBRACKETED.exec(text);
  const match = bracketed ?? plain;
  if (!match) {
    const colons = text.split(':').length - 1;
    if (colons >= 2 && !text.startsWith('[')) {
      return fail(`IPv6 addresses need brackets, e.g. [::1]:8080 (${ADDRESS_HINT})`);
    }
    return fail(ADDRESS_HINT);
  }
  const rawHost = match[1] ?? '';
  const rawPort = match[2] ?? '';
  if (!/^\d{1,10}$/.test(rawPort)) return fail(ADDRESS_HINT);
  const port = Number(rawPort);
  if (port > 65535) return fail(`port ${port} is out of range (0-65535)`);

  if (bracketed) {
    if (isIP(rawHost) !== 6) return fail(`"[${rawHost}]" is not an IPv6 address`);
    const host = canonicalIPv6(rawHost);
    return { ok: true, value: { host, port, family: 6, text: `[${host}]:${port}` } };
  }
  const host = rawHost.toLowerCase() === 'localhost' ? '127.0.0.1' : rawHost;
  if (isIP(host) !== 4) {
    return fail(`host "${rawHost}" is not an IP address; names are not resolved (use e.g. 127.0.0.1, 0.0.0.0 or [::])`);
  }
  return { ok: true, value: { host, port, family: 4, text: `${host}:${port}` } };
}

/**
 * One spelling per address, so that `[0:0::1]:80` and `[::1]:80` are seen as
 * the same listener and metrics labels do not split. The WHATWG URL parser
 * implements RFC 5952 compression; zone ids (`fe80::1%eth0`) it rejects, and
 * those are kept as written.
 */
function canonicalIPv6(host: string): string {
  if (host.includes('%')) return host;
  try {
    return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return host;
  }
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `"500ms"`, `"10s"`, `"2m"`, `"1h"`, `"14d"`, compounds such as `"1m30s"`, or
 * a plain number (or numeric string) of seconds. Returns milliseconds, at most
 * `maxMs` (by default what a timer can wait; a duration that is never a timer,
 * such as how long before expiry to warn, may allow more).
 */
export function parseDuration(input: string | number, maxMs = MAX_DURATION_MS): Parsed<number> {
  let ms: number;
  if (typeof input === 'number') {
    ms = input * 1000;
  } else if (/^\d+(?:\.\d+)?$/.test(input)) {
    ms = Number(input) * 1000;
  } else {
    ms = 0;
    DURATION_PART.lastIndex = 0;
    let consumed = 0;
    for (let m = DURATION_PART.exec(input); m; m = DURATION_PART.exec(input)) {
      ms += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? Number.NaN);
      consumed = DURATION_PART.lastIndex;
    }
    if (consumed === 0 || consumed !== input.length) return fail(DURATION_HINT);
  }
  if (!Number.isFinite(ms) || ms < 0) return fail(DURATION_HINT);
  const rounded = Math.round(ms);
  if (rounded > maxMs) {
    return fail(`duration ${String(input)} is too long (at most ${maxMs} ms, about ${(maxMs / 86_400_000).toFixed(1)} days)`);
  }
  return { ok: true, value: rounded };
}

/** The pattern editors see in the JSON Schema; parseDuration is the authority. */
export const DURATION_PATTERN = /^(?:\d+(?:\.\d+)?|(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+)$/;

function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}
