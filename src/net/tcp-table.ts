// /proc/<pid>/net/tcp and tcp6: the TCP sockets of a network namespace.
// Addresses are printed as 32-bit words in host byte order (little-endian
// here), ports as host-order numbers.

import { readFileSync } from 'node:fs';
import { formatIPv4, formatIPv6 } from '../sys/index.js';

export const TCP_LISTEN = 0x0a;
/** Half-open requests (the kernel's NEW_SYN_RECV request socks) show as SYN_RECV. */
export const TCP_SYN_RECV = 0x03;

export interface TcpTableEntry {
  readonly family: 4 | 6;
  /** Local address as 4 (IPv4) or 16 (IPv6) bytes in network order. */
  readonly localBytes: Uint8Array;
  readonly localHost: string;
  readonly localPort: number;
  /** Kernel state number, e.g. TCP_LISTEN (0x0A). */
  readonly state: number;
  /** For a LISTEN socket: the accept-queue length. */
  readonly rxQueue: number;
  readonly txQueue: number;
  readonly uid: number;
  readonly inode: number;
}

/** The TCP sockets of the network namespace of `pid` (default: this process's). */
export function readTcpTable(pid: number | 'self' = 'self'): TcpTableEntry[] {
  return [...readOne(`/proc/${pid}/net/tcp`, 4), ...readOne(`/proc/${pid}/net/tcp6`, 6)];
}

function readOne(path: string, family: 4 | 6): TcpTableEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    // No IPv6 in this kernel or namespace: no table.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries: TcpTableEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const entry = parseLine(line, family);
    if (entry) entries.push(entry);
  }
  return entries;
}

// "  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 12345 1 ..."
function parseLine(line: string, family: 4 | 6): TcpTableEntry | undefined {
  const f = line.trim().split(/\s+/);
  const [local, state, queues, uid, inode] = [f[1], f[3], f[4], f[7], f[9]];
  if (local === undefined || state === undefined || queues === undefined || uid === undefined || inode === undefined) {
    return undefined;
  }
  const [addrHex, portHex] = local.split(':');
  const [txHex, rxHex] = queues.split(':');
  if (addrHex === undefined || portHex === undefined || txHex === undefined || rxHex === undefined) return undefined;
  const localBytes = hexWordsToBytes(addrHex);
  if (localBytes.length !== (family === 4 ? 4 : 16)) return undefined;
  return {
    family,
    localBytes,
    localHost: family === 4 ? formatIPv4(localBytes) : formatIPv6(localBytes),
    localPort: parseInt(portHex, 16),
    state: parseInt(state, 16),
    rxQueue: parseInt(rxHex, 16),
    txQueue: parseInt(txHex, 16),
    uid: Number(uid),
    inode: Number(inode),
  };
}

function hexWordsToBytes(hex: string): Uint8Array {
  const bytes = Buffer.alloc(hex.length / 2);
  for (let i = 0; i + 8 <= hex.length; i += 8) bytes.writeUInt32LE(parseInt(hex.slice(i, i + 8), 16) >>> 0, i / 2);
  return bytes;
}

/**
 * Half-open requests (SYN_RECV rows) whose local port is `port`, in the
 * network namespace of `pid`. The rows carry no listener, so old and new
 * listeners of one port look alike: an upper bound for one of them.
 */
export function countSynRecv(port: number, pid: number | 'self' = 'self'): number {
  return readTcpTable(pid).filter((e) => e.state === TCP_SYN_RECV && e.localPort === port).length;
}
