// /proc/<pid>/net/tcp and tcp6: the TCP sockets of a network namespace.
// Addresses are printed as 32-bit words in host byte order (little-endian
// here), ports as host-order numbers.

import { closeSync, openSync, readSync } from 'node:fs';
import { formatIPv4, formatIPv6 } from '../sys/index.js';

export const TCP_LISTEN = 0x0a;
/** A request whose handshake is not finished (NEW_SYN_RECV requests are printed with this state). */
export const TCP_SYN_RECV = 0x03;

export interface TcpTableEntry {
  readonly family: 4 | 6;
  /** Local address as 4 (IPv4) or 16 (IPv6) bytes in network order. */
  readonly localBytes: Uint8Array;
  readonly localHost: string;
  readonly localPort: number;
  readonly remoteHost: string;
  readonly remotePort: number;
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
  return [...readRows(`/proc/${pid}/net/tcp`, 4), ...readRows(`/proc/${pid}/net/tcp6`, 6)];
}

/** The LISTEN sockets of the network namespace of `pid`, without reading its connections (see readListening). */
export function readListeningTable(pid: number | 'self' = 'self'): TcpTableEntry[] {
  return [...readListening(`/proc/${pid}/net/tcp`, 4), ...readListening(`/proc/${pid}/net/tcp6`, 6)];
}

// "  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 12345 1 ..."
function parseLine(line: string, family: 4 | 6): TcpTableEntry | undefined {
  const f = line.trim().split(/\s+/);
  const [local, remote, state, queues, uid, inode] = [f[1], f[2], f[3], f[4], f[7], f[9]];
  if (local === undefined || remote === undefined || state === undefined || queues === undefined || uid === undefined || inode === undefined) {
    return undefined;
  }
  const [addrHex, portHex] = local.split(':');
  const [remoteHex, remotePortHex] = remote.split(':');
  const [txHex, rxHex] = queues.split(':');
  if (addrHex === undefined || portHex === undefined || txHex === undefined || rxHex === undefined) return undefined;
  if (remoteHex === undefined || remotePortHex === undefined) return undefined;
  const localBytes = hexWordsToBytes(addrHex);
  const remoteBytes = hexWordsToBytes(remoteHex);
  const size = family === 4 ? 4 : 16;
  if (localBytes.length !== size || remoteBytes.length !== size) return undefined;
  const text = family === 4 ? formatIPv4 : formatIPv6;
  return {
    family,
    localBytes,
    localHost: text(localBytes),
    localPort: parseInt(portHex, 16),
    remoteHost: text(remoteBytes),
    remotePort: parseInt(remotePortHex, 16),
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
 * The order in which the LISTEN sockets with these inodes joined their
 * reuseport group (the order of the group's socket array while nobody has
 * left it). /proc lists one listening bucket's sockets in list order, and
 * the kernel puts a reuseport socket at the head of that list when it
 * listens, except an AF_INET6 one, which it appends (inet_hash): so tcp6 is
 * listed in join order and tcp in reverse. Inodes not found in LISTEN are
 * left out.
 */
export function joinOrder(inodes: readonly number[], family: 4 | 6, pid: number | 'self' = 'self'): number[] {
  const wanted = new Set(inodes);
  const listed = readListening(`/proc/${pid}/net/${family === 4 ? 'tcp' : 'tcp6'}`, family)
    .filter((e) => wanted.has(e.inode))
    .map((e) => e.inode);
  return family === 4 ? listed.reverse() : listed;
}

/** How much of a table readRows reads at a time. */
const CHUNK_BYTES = 64 * 1024;

/**
 * The LISTEN rows of one table, read only as far as they go: the kernel
 * prints the listening hash first, then the established hash (every
 * connection, TIME_WAIT and half-open request of the namespace: 11,000 rows
 * under a test's new-connection load, ~40 ms to read whole), so the first
 * row in another state ends the listeners.
 */
function readListening(path: string, family: 4 | 6): TcpTableEntry[] {
  return readRows(path, family, (e) => e.state !== TCP_LISTEN);
}

/**
 * The rows of one table, in the kernel's order, up to the first for which
 * `stop` is true (left out), else all of them; no table (no IPv6 in this
 * kernel or namespace) is an empty one.
 */
function readRows(path: string, family: 4 | 6, stop: (entry: TcpTableEntry) => boolean = () => false): TcpTableEntry[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries: TcpTableEntry[] = [];
  try {
    const buf = Buffer.alloc(CHUNK_BYTES);
    let rest = '';
    let header = true;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      const lines = (rest + buf.toString('latin1', 0, n)).split('\n');
      rest = n === 0 ? '' : (lines.pop() ?? '');
      for (const line of lines) {
        if (header) {
          header = false;
          continue;
        }
        const entry = parseLine(line, family);
        if (!entry) continue;
        if (stop(entry)) return entries;
        entries.push(entry);
      }
      if (n === 0) return entries;
    }
  } finally {
    closeSync(fd);
  }
}
