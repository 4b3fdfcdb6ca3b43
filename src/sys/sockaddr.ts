// struct sockaddr_in / sockaddr_in6 encoding. Ports and addresses are in
// network byte order; sa_family and sin6_scope_id in host order, which is
// little-endian on every architecture handover supports (x86-64, arm64).

import type { SocketAddress } from '../config/types.js';
import { AF_INET, AF_INET6, SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE } from './constants.js';
import { SyscallError } from './errno.js';
import { libc } from './libc.js';

const EINVAL = 22;
const EAFNOSUPPORT = 97;

/** The canonical text of an address: `127.0.0.1:8080`, `[::1]:8080`. */
export function addressText(host: string, port: number, family: 4 | 6): string {
  return family === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function socketAddress(host: string, port: number, family: 4 | 6): SocketAddress {
  return Object.freeze({ host, port, family, text: addressText(host, port, family) });
}

/** Encodes `address` as the sockaddr that bind(2) takes; bad input → SyscallError('inet_pton', EINVAL). */
export function encodeSockaddr(address: SocketAddress, target = address.text): Buffer {
  const { port, family } = address;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SyscallError('bind', EINVAL, target);
  }
  let host = address.host;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (family === 4) {
    const sa = Buffer.alloc(SOCKADDR_IN_SIZE);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    pton(AF_INET, host, sa.subarray(4, 8), target);
    return sa;
  }
  const sa = Buffer.alloc(SOCKADDR_IN6_SIZE);
  sa.writeUInt16LE(AF_INET6, 0);
  sa.writeUInt16BE(port, 2);
  const zone = host.indexOf('%');
  if (zone >= 0) {
    sa.writeUInt32LE(scopeId(host.slice(zone + 1), target), 24);
    host = host.slice(0, zone);
  }
  pton(AF_INET6, host, sa.subarray(8, 24), target);
  return sa;
}

// ffi-rs hands C the Buffer's own memory (offset included), so inet_pton
// writes straight into the sockaddr through a subarray.
function pton(af: number, host: string, out: Buffer, target: string): void {
  const r = libc().inet_pton([af, host, out]);
  if (r.value !== 1) throw new SyscallError('inet_pton', r.value === 0 ? EINVAL : r.errnoCode, target);
}

function scopeId(zone: string, target: string): number {
  if (/^\d+$/.test(zone)) return Number(zone);
  const r = libc().if_nametoindex([zone]);
  if (r.value === 0) throw new SyscallError('if_nametoindex', r.errnoCode || 19 /* ENODEV */, target);
  return r.value;
}

/** Decodes what getsockname(2) wrote. */
export function decodeSockaddr(sa: Buffer, target: string): SocketAddress {
  const af = sa.length >= 2 ? sa.readUInt16LE(0) : -1;
  if (af === AF_INET && sa.length >= SOCKADDR_IN_SIZE) {
    return socketAddress(formatIPv4(sa.subarray(4, 8)), sa.readUInt16BE(2), 4);
  }
  if (af === AF_INET6 && sa.length >= 24) {
    const scope = sa.length >= SOCKADDR_IN6_SIZE ? sa.readUInt32LE(24) : 0;
    const host = formatIPv6(sa.subarray(8, 24)) + (scope !== 0 ? `%${scope}` : '');
    return socketAddress(host, sa.readUInt16BE(2), 6);
  }
  throw new SyscallError('getsockname', EAFNOSUPPORT, target);
}

export function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4)).join('.');
}

/** RFC 5952 text: lower case, longest run (≥ 2) of zero groups as `::`, v4-mapped as `::ffff:a.b.c.d`. */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes.subarray(12, 16))}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
