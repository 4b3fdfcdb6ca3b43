// Who else listens where we are about to: a stale master, or another program.
// SO_REUSEPORT lets any process of the same uid join our port silently and
// take a share of the connections, so the master looks before it binds.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import type { SocketAddress } from '../config/types.js';
import { addressText, encodeSockaddr } from '../sys/index.js';
import { readListeningTable } from './tcp-table.js';
import type { TcpTableEntry } from './tcp-table.js';

export interface ForeignListener {
  /** Its local address, e.g. `0.0.0.0:8080` or `[::]:8080`. */
  readonly local: string;
  readonly uid: number;
  readonly inode: number;
  /** The lowest pid holding the socket, when /proc lets us see it. */
  readonly pid?: number;
  /** That process's program name (from /proc/<pid>/cmdline, else comm). */
  readonly command?: string;
}

/**
 * LISTEN sockets of this network namespace whose local address overlaps
 * `address` on the same port: the same address, or a wildcard (0.0.0.0, ::)
 * on either side, IPv4-mapped IPv6 counted as IPv4. `::` is assumed to
 * cover IPv4 as well, since /proc does not show IPV6_V6ONLY.
 */
export function findForeignListeners(address: SocketAddress): ForeignListener[] {
  if (address.port === 0) return [];
  const ours = normalise(addressBytes(address));
  const found = readListeningTable('self').filter(
    (e) => e.localPort === address.port && overlaps(normalise(e.localBytes), ours),
  );
  if (found.length === 0) return [];
  const owners = socketOwners(new Set(found.map((e) => e.inode)));
  return found.map((e) => describe(e, owners.get(e.inode)));
}

function describe(e: TcpTableEntry, pid: number | undefined): ForeignListener {
  const base = { local: addressText(e.localHost, e.localPort, e.family), uid: e.uid, inode: e.inode };
  if (pid === undefined) return base;
  const command = readCommand(pid);
  return command === undefined ? { ...base, pid } : { ...base, pid, command };
}

function addressBytes(address: SocketAddress): Uint8Array {
  const sa = encodeSockaddr(address);
  return address.family === 4 ? sa.subarray(4, 8) : sa.subarray(8, 24);
}

type Normalised = { kind: 'any4' } | { kind: 'any6' } | { kind: 'ip'; v4: boolean; bytes: string };

const V4_MAPPED = '00000000000000000000ffff';

function normalise(bytes: Uint8Array): Normalised {
  let hex = Buffer.from(bytes).toString('hex');
  if (hex.length === 8) hex = V4_MAPPED + hex;
  if (/^0+$/.test(hex)) return { kind: 'any6' };
  const v4 = hex.startsWith(V4_MAPPED);
  if (v4 && hex.endsWith('00000000')) return { kind: 'any4' };
  return { kind: 'ip', v4, bytes: hex };
}

function overlaps(a: Normalised, b: Normalised): boolean {
  if (a.kind === 'any6' || b.kind === 'any6') return true;
  if (a.kind === 'any4') return b.kind === 'any4' || b.v4;
  if (b.kind === 'any4') return a.v4;
  return a.bytes === b.bytes;
}

/** inode → lowest pid with a descriptor on it. Best effort: unreadable processes are skipped. */
function socketOwners(inodes: Set<number>): Map<number, number> {
  const owners = new Map<number, number>();
  const pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  for (const pid of pids) {
    if (owners.size === inodes.size) break;
    for (const inode of socketInodes(pid)) {
      if (inodes.has(inode) && !owners.has(inode)) owners.set(inode, pid);
    }
  }
  return owners;
}

function socketInodes(pid: number): number[] {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return []; // gone, or not ours to read
  }
  const inodes: number[] = [];
  for (const fd of fds) {
    let link: string;
    try {
      link = readlinkSync(`${dir}/${fd}`);
    } catch {
      continue;
    }
    if (link.startsWith('socket:[')) inodes.push(Number(link.slice(8, -1)));
  }
  return inodes;
}

/**
 * The program's name as a person knows it. Not /proc/<pid>/comm alone: that
 * is the main thread's name, which Node 24 sets to "MainThread". argv[0]'s
 * basename instead ("node"), or the whole title when the program rewrote its
 * command line (nginx: "nginx: master process /usr/sbin/nginx"); comm when
 * the command line is empty (a kernel thread, a zombie).
 */
function readCommand(pid: number): string | undefined {
  const argv0 = readProc(pid, 'cmdline')?.split('\0')[0]?.trim();
  if (argv0) return /\s/.test(argv0) ? argv0 : basename(argv0);
  return readProc(pid, 'comm')?.trim() || undefined;
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}
