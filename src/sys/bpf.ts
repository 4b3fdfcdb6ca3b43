// The bpf(2) system call through libc's syscall(), and the socket options
// that attach reuseport programs. No libbpf: bpf_attr is written by hand
// (offsets in constants.ts), and every pointer it holds points to native
// memory that lives only for the call. Descriptors returned here belong to
// the caller.

import {
  BPF_ANY, BPF_ATTR_SIZE, BPF_ELEM_ATTR, BPF_MAP_CREATE, BPF_MAP_CREATE_ATTR, BPF_MAP_DELETE_ELEM,
  BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_OBJ_NAME_LEN, BPF_PROG_LOAD, BPF_PROG_LOAD_ATTR,
  BPF_SYSCALL_NUMBER, SO_ATTACH_REUSEPORT_CBPF, SO_ATTACH_REUSEPORT_EBPF, SO_DETACH_REUSEPORT_BPF,
  SOCK_FILTER_SIZE, SOCK_FPROG_SIZE, SOL_SOCKET,
} from './constants.js';
import { SyscallError } from './errno.js';
import { call, DataType, libc } from './libc.js';
import type { Result } from './libc.js';
import { withNative } from './native.js';
import type { NativeBlock } from './native.js';
import { NotSupportedError } from './not-supported.js';

const ENOENT = 2;
const EPERM = 1;
const ENOSYS = 38;
const ENOPROTOOPT = 92;

/** The capability that bpf() commands other than unprivileged ones need. */
export const BPF_CAPABILITY = 'CAP_BPF or CAP_SYS_ADMIN';

/** syscall number of bpf() on `arch`; NotSupportedError on an architecture handover has no number for. */
export function bpfSyscallNumber(arch: string = process.arch): number {
  const nr = (BPF_SYSCALL_NUMBER as Record<string, number | undefined>)[arch];
  if (nr === undefined) {
    throw new NotSupportedError(`the bpf() system call on ${arch}`, { detail: 'x86-64 (x64) or arm64' });
  }
  return nr;
}

/**
 * One bpf() call: `attr` is passed in place (the kernel may write back into
 * it). Returns the call's value; throws SyscallError(`bpf`, errno, target)
 * or, for ENOSYS and EPERM, NotSupportedError.
 */
export function bpf(cmd: number, attr: Buffer, target: string): number {
  const r = rawBpf(cmd, attr);
  if (r.value >= 0) return r.value;
  throw notSupported(r.errnoCode, `bpf ${target}`) ?? new SyscallError('bpf', r.errnoCode, target);
}

function rawBpf(cmd: number, attr: Buffer): Result {
  if (attr.length !== BPF_ATTR_SIZE) throw new RangeError(`bpf_attr must be ${BPF_ATTR_SIZE} bytes (got ${attr.length})`);
  return call('syscall', [DataType.I64, DataType.I32, DataType.U8Array, DataType.I32], [bpfSyscallNumber(), cmd, attr, attr.length]);
}

// ENOSYS: no bpf() at all; EPERM: not for us (the verifier says EACCES).
function notSupported(errno: number, what: string): NotSupportedError | undefined {
  if (errno === ENOSYS) return new NotSupportedError('the bpf() system call', { detail: 'a kernel built with CONFIG_BPF_SYSCALL' });
  if (errno === EPERM) return new NotSupportedError(what, { capability: BPF_CAPABILITY });
  return undefined;
}

export interface MapSpec {
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** Shown by bpftool; [A-Za-z0-9_.], at most 15 characters. */
  readonly name: string;
}

/** BPF_MAP_CREATE: the new map's descriptor (close-on-exec, as every bpf fd). */
export function createMap(spec: MapSpec): number {
  const A = BPF_MAP_CREATE_ATTR;
  const attr = Buffer.alloc(BPF_ATTR_SIZE);
  attr.writeUInt32LE(spec.type, A.mapType);
  attr.writeUInt32LE(spec.keySize, A.keySize);
  attr.writeUInt32LE(spec.valueSize, A.valueSize);
  attr.writeUInt32LE(spec.maxEntries, A.maxEntries);
  objectName(spec.name).copy(attr, A.mapName);
  return bpf(BPF_MAP_CREATE, attr, `BPF_MAP_CREATE ${spec.name}`);
}

function elemAttr(mapFd: number, key: NativeBlock, value: NativeBlock | undefined, flags: number): Buffer {
  const attr = Buffer.alloc(BPF_ATTR_SIZE);
  attr.writeUInt32LE(mapFd, BPF_ELEM_ATTR.mapFd);
  attr.writeBigUInt64LE(key.address, BPF_ELEM_ATTR.key);
  if (value !== undefined) attr.writeBigUInt64LE(value.address, BPF_ELEM_ATTR.value);
  attr.writeBigUInt64LE(BigInt(flags), BPF_ELEM_ATTR.flags);
  return attr;
}

/** BPF_MAP_UPDATE_ELEM with `flags` (BPF_ANY, BPF_NOEXIST, BPF_EXIST). */
export function mapUpdate(mapFd: number, key: Buffer, value: Buffer, flags = BPF_ANY, target = `map fd ${mapFd}`): void {
  withNative([key, value], ([k, v]) => {
    bpf(BPF_MAP_UPDATE_ELEM, elemAttr(mapFd, k!, v!, flags), `BPF_MAP_UPDATE_ELEM ${target}`);
  });
}

/** BPF_MAP_LOOKUP_ELEM: the value's bytes, or null when the key holds nothing (ENOENT). */
export function mapLookup(mapFd: number, key: Buffer, valueSize: number, target = `map fd ${mapFd}`): Buffer | null {
  return withNative([key, Buffer.alloc(valueSize)], ([k, v]) => {
    try {
      bpf(BPF_MAP_LOOKUP_ELEM, elemAttr(mapFd, k!, v!, 0), `BPF_MAP_LOOKUP_ELEM ${target}`);
    } catch (err) {
      if (err instanceof SyscallError && err.errno === ENOENT) return null;
      throw err;
    }
    return v!.read();
  });
}

/** BPF_MAP_DELETE_ELEM: false when the key held nothing. */
export function mapDelete(mapFd: number, key: Buffer, target = `map fd ${mapFd}`): boolean {
  return withNative([key], ([k]) => {
    try {
      bpf(BPF_MAP_DELETE_ELEM, elemAttr(mapFd, k!, undefined, 0), `BPF_MAP_DELETE_ELEM ${target}`);
      return true;
    } catch (err) {
      if (err instanceof SyscallError && err.errno === ENOENT) return false;
      throw err;
    }
  });
}

/** A program the kernel refused: the verifier's log is part of the message. */
export class VerifierError extends SyscallError {
  readonly log: string;

  constructor(errno: number, target: string, log: string) {
    super('bpf', errno, target);
    this.name = 'VerifierError';
    this.log = log;
    this.message = log === '' ? `${this.message} (the verifier left no log)` : `${this.message}; verifier log:\n${log}`;
  }
}

export interface ProgramSpec {
  readonly type: number;
  readonly expectedAttachType: number;
  /** Encoded eBPF instructions, 8 bytes each. */
  readonly instructions: Buffer;
  readonly license: string;
  readonly name: string;
  /** Size of the verifier log buffer. */
  readonly logSize: number;
}

/**
 * BPF_PROG_LOAD with a verifier log (log_level 1). On refusal throws
 * VerifierError carrying the log; EPERM is NotSupportedError (no capability).
 */
export function loadProgram(spec: ProgramSpec): number {
  const A = BPF_PROG_LOAD_ATTR;
  if (spec.instructions.length === 0 || spec.instructions.length % 8 !== 0) {
    throw new RangeError(`program ${spec.name}: instructions must be a non-empty multiple of 8 bytes`);
  }
  const target = `BPF_PROG_LOAD ${spec.name}`;
  return withNative([spec.instructions, Buffer.from(`${spec.license}\0`, 'latin1'), Buffer.alloc(spec.logSize)], ([insns, license, log]) => {
    const attr = Buffer.alloc(BPF_ATTR_SIZE);
    attr.writeUInt32LE(spec.type, A.progType);
    attr.writeUInt32LE(spec.instructions.length / 8, A.insnCnt);
    attr.writeBigUInt64LE(insns!.address, A.insns);
    attr.writeBigUInt64LE(license!.address, A.license);
    attr.writeUInt32LE(1, A.logLevel);
    attr.writeUInt32LE(spec.logSize, A.logSize);
    attr.writeBigUInt64LE(log!.address, A.logBuf);
    objectName(spec.name).copy(attr, A.progName);
    attr.writeUInt32LE(spec.expectedAttachType, A.expectedAttachType);
    const r = rawBpf(BPF_PROG_LOAD, attr);
    if (r.value >= 0) return r.value;
    throw notSupported(r.errnoCode, `loading eBPF program ${spec.name}`) ?? new VerifierError(r.errnoCode, target, cString(log!.read()));
  });
}

/** SO_ATTACH_REUSEPORT_EBPF: the program decides for the socket's whole reuseport group. */
export function attachReuseportEbpf(sockFd: number, progFd: number, target = `fd ${sockFd}`): void {
  setsockoptBytes(sockFd, SO_ATTACH_REUSEPORT_EBPF, int32(progFd), 'SO_ATTACH_REUSEPORT_EBPF', target);
}

/**
 * SO_ATTACH_REUSEPORT_CBPF with a classic BPF program (sock_filter entries,
 * 8 bytes each); needs no privilege. Replaces whatever program the group had.
 */
export function attachReuseportCbpf(sockFd: number, filter: Buffer, target = `fd ${sockFd}`): void {
  if (filter.length === 0 || filter.length % SOCK_FILTER_SIZE !== 0) {
    throw new RangeError(`classic BPF program must be a non-empty multiple of ${SOCK_FILTER_SIZE} bytes`);
  }
  withNative([filter], ([insns]) => {
    const fprog = Buffer.alloc(SOCK_FPROG_SIZE);
    fprog.writeUInt16LE(filter.length / SOCK_FILTER_SIZE, 0);
    fprog.writeBigUInt64LE(insns!.address, 8);
    setsockoptBytes(sockFd, SO_ATTACH_REUSEPORT_CBPF, fprog, 'SO_ATTACH_REUSEPORT_CBPF', target);
  });
}

/** SO_DETACH_REUSEPORT_BPF (Linux 5.3): the group goes back to hashing. False when none was attached. */
export function detachReuseportBpf(sockFd: number, target = `fd ${sockFd}`): boolean {
  try {
    setsockoptBytes(sockFd, SO_DETACH_REUSEPORT_BPF, int32(0), 'SO_DETACH_REUSEPORT_BPF', target);
    return true;
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOENT) return false;
    throw err;
  }
}

function setsockoptBytes(fd: number, name: number, value: Buffer, option: string, target: string): void {
  const r = libc().setsockopt([fd, SOL_SOCKET, name, value, value.length]);
  if (r.value === 0) return;
  if (r.errnoCode === ENOPROTOOPT) {
    const minKernel = name === SO_DETACH_REUSEPORT_BPF ? 'Linux 5.3' : 'Linux 4.5';
    throw new NotSupportedError(option, { minKernel });
  }
  throw new SyscallError('setsockopt', r.errnoCode, `${option} ${target}`);
}

function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  return b;
}

/** A bpf object name: [A-Za-z0-9_.] only, at most 15 bytes, NUL-padded. */
function objectName(name: string): Buffer {
  const out = Buffer.alloc(BPF_OBJ_NAME_LEN);
  out.write(name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, BPF_OBJ_NAME_LEN - 1), 'latin1');
  return out;
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8').trimEnd();
}
