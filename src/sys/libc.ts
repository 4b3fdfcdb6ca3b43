// The one place that opens libc through ffi-rs. Bindings are defined once,
// lazily (importing sys/ costs nothing until the first call), and every call
// reports errno (`errno: true`), which is read only when the call failed.

import { DataType, define, load, open } from 'ffi-rs';
import { SyscallError } from './errno.js';

const LIBRARY = 'handover-libc';

/** What an ffi-rs call with `errno: true` returns. */
export interface Result<T = number> {
  readonly value: T;
  readonly errnoCode: number;
}

type Call<A extends unknown[], T = number> = (args: A) => Result<T>;

interface Libc {
  socket: Call<[number, number, number]>;
  setsockopt: Call<[number, number, number, Buffer, number]>;
  getsockopt: Call<[number, number, number, Buffer, Buffer]>;
  bind: Call<[number, Buffer, number]>;
  listen: Call<[number, number]>;
  getsockname: Call<[number, Buffer, Buffer]>;
  shutdown: Call<[number, number]>;
  close: Call<[number]>;
  fcntl: Call<[number, number, number]>;
  inet_pton: Call<[number, string, Buffer]>;
  if_nametoindex: Call<[string]>;
  getppid: Call<[]>;
  setpgid: Call<[number, number]>;
  sendto: Call<[number, Buffer, number, number, Buffer, number]>;
  recv: Call<[number, Buffer, number, number]>;
  clock_gettime: Call<[number, Buffer]>;
  capget: Call<[Buffer, Buffer]>;
  capset: Call<[Buffer, Buffer]>;
  prctl: Call<[number, number, number, number, number]>;
  waitpid: Call<[number, Buffer, number]>;
}

/** The file name of the C library Node itself runs on: glibc, or musl (Alpine). */
export function libcName(): string {
  if (process.platform !== 'linux') {
    throw new Error(`handover needs Linux (this is ${process.platform})`);
  }
  if (isGlibc()) return 'libc.so.6';
  const arch = process.arch === 'arm64' ? 'aarch64' : process.arch === 'x64' ? 'x86_64' : process.arch;
  return `libc.musl-${arch}.so.1`;
}

function isGlibc(): boolean {
  const report: any = process.report;
  if (report === undefined) return true;
  // Without excludeNetwork, Node resolves the name of every open socket
  // while building the report.
  const excluded = report.excludeNetwork;
  try {
    if (excluded !== undefined) report.excludeNetwork = true;
    return report.getReport()?.header?.glibcVersionRuntime !== undefined;
  } finally {
    if (excluded !== undefined) report.excludeNetwork = excluded;
  }
}

const I32 = DataType.I32;
const I64 = DataType.I64; // size_t, ssize_t, unsigned long (LP64)
const BUF = DataType.U8Array;
const STR = DataType.String;

function fn(paramsType: DataType[], retType: DataType = I32) {
  return { library: LIBRARY, retType, paramsType, errno: true as const };
}

let bindings: Libc | undefined;

/** The libc bindings, opening the library on first use. */
export function libc(): Libc {
  if (bindings !== undefined) return bindings;
  open({ library: LIBRARY, path: libcName() });
  bindings = define({
    socket: fn([I32, I32, I32]),
    setsockopt: fn([I32, I32, I32, BUF, I32]),
    getsockopt: fn([I32, I32, I32, BUF, BUF]),
    bind: fn([I32, BUF, I32]),
    listen: fn([I32, I32]),
    getsockname: fn([I32, BUF, BUF]),
    shutdown: fn([I32, I32]),
    close: fn([I32]),
    fcntl: fn([I32, I32, I32]),
    inet_pton: fn([I32, STR, BUF]),
    if_nametoindex: fn([STR], DataType.U32),
    getppid: fn([]),
    setpgid: fn([I32, I32]),
    sendto: fn([I32, BUF, I64, I32, BUF, I32], I64),
    recv: fn([I32, BUF, I64, I32], I64),
    clock_gettime: fn([I32, BUF]),
    capget: fn([BUF, BUF]),
    capset: fn([BUF, BUF]),
    // prctl(2) with five integer arguments (the kernel reads all five as unsigned long).
    prctl: fn([I32, I64, I64, I64, I64]),
    waitpid: fn([I32, BUF, I32]),
  }) as any as Libc;
  return bindings;
}

/**
 * One-off call with a signature that differs from the table above (libc's
 * variadic functions, e.g. prctl with an int or a pointer argument).
 */
export function call(funcName: string, paramsType: DataType[], paramsValue: unknown[]): Result {
  libc();
  return load({ library: LIBRARY, funcName, retType: I32, paramsType, paramsValue, errno: true }) as any as Result;
}

/** Returns the call's value, or throws SyscallError when it returned -1. */
export function check(result: Result, syscall: string, target?: string): number {
  if (result.value === -1) throw new SyscallError(syscall, result.errnoCode, target);
  return result.value;
}

export { DataType };
