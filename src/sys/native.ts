// Native memory for structs that hold pointers (bpf_attr, sock_fprog): a
// JavaScript Buffer has no address that C code may keep, so the bytes such a
// struct points to are copied into malloc'd memory, whose address is a
// plain 64-bit number to write into the struct.

import { DataType, load } from 'ffi-rs';
import { libc } from './libc.js';

const LIBRARY = 'handover-libc';

function malloc(size: number): bigint {
  libc();
  return load({ library: LIBRARY, funcName: 'calloc', retType: DataType.BigInt, paramsType: [DataType.I64, DataType.I64], paramsValue: [1, size] }) as bigint;
}

function copyIn(address: bigint, from: Buffer): void {
  load({ library: LIBRARY, funcName: 'memcpy', retType: DataType.BigInt, paramsType: [DataType.BigInt, DataType.U8Array, DataType.I64], paramsValue: [address, from, from.length] });
}

function copyOut(to: Buffer, address: bigint): void {
  load({ library: LIBRARY, funcName: 'memcpy', retType: DataType.BigInt, paramsType: [DataType.U8Array, DataType.BigInt, DataType.I64], paramsValue: [to, address, to.length] });
}

/** A zero-filled block of C heap memory. Owned: `free()` once, on every path. */
export class NativeBlock {
  readonly size: number;
  #address: bigint | undefined;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`native block size must be a positive integer (got ${size})`);
    const address = malloc(size);
    if (address === 0n) throw new Error(`calloc(${size}): out of memory`);
    this.size = size;
    this.#address = address;
  }

  /** A block holding a copy of `bytes`. */
  static from(bytes: Buffer): NativeBlock {
    const block = new NativeBlock(Math.max(1, bytes.length));
    block.write(bytes);
    return block;
  }

  get address(): bigint {
    if (this.#address === undefined) throw new Error('native block already freed');
    return this.#address;
  }

  write(bytes: Buffer, offset = 0): void {
    this.#check(offset, bytes.length);
    if (bytes.length > 0) copyIn(this.address + BigInt(offset), bytes);
  }

  read(offset = 0, length = this.size - offset): Buffer {
    this.#check(offset, length);
    const out = Buffer.alloc(length);
    if (length > 0) copyOut(out, this.address + BigInt(offset));
    return out;
  }

  /** Idempotent. */
  free(): void {
    const address = this.#address;
    if (address === undefined) return;
    this.#address = undefined;
    load({ library: LIBRARY, funcName: 'free', retType: DataType.Void, paramsType: [DataType.BigInt], paramsValue: [address] });
  }

  #check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`native block of ${this.size} bytes: ${length} bytes at ${offset} are out of range`);
    }
  }
}

/** Runs `use` with native copies of `buffers`, freeing them whatever happens. */
export function withNative<T>(buffers: readonly Buffer[], use: (blocks: readonly NativeBlock[]) => T): T {
  const blocks: NativeBlock[] = [];
  try {
    for (const b of buffers) blocks.push(NativeBlock.from(b));
    return use(blocks);
  } finally {
    for (const b of blocks) b.free();
  }
}
