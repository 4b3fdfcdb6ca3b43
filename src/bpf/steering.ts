// Classic BPF steering for the unprivileged `drain` strategy
// (SO_ATTACH_REUSEPORT_CBPF: Linux 4.5, no capability). A classic program
// attached to a reuseport group returns an index into the group's socket
// array; an index at or past the end falls back to the kernel's hash. The
// array is in join order (listen() order) until a socket leaves it: then
// the LAST socket moves into the freed slot. So a program is only right for
// the layout it was built for:
//
//   - steerToNew(oldCount, newCount): `random % newCount + oldCount`, right
//     while the array is exactly oldCount old sockets then newCount new ones,
//     i.e. from the moment the new generation has joined until any socket
//     of the group leaves (an old listener's shutdown, an old or new worker's
//     death). ReuseportLayout (layout.ts) says where every socket is after
//     that, and steerToSlots() builds the program for any set of slots.
//   - re-attach after every change of the group: before a planned shutdown
//     attach the program for layout.slotsSurviving(...) (right both before
//     and after it), after it the program for the new layout.

import { BPF_MAXINSNS, SKF_AD_RANDOM_OFFSET, SOCK_FILTER_SIZE } from '../sys/constants.js';

// Classic BPF opcodes (linux/filter.h).
const LD_W_ABS = 0x20; // A = ancillary data at k
const ALU_MOD_K = 0x94; // A %= k
const ALU_ADD_K = 0x04; // A += k
const JEQ_K = 0x15; // if A == k goto +jt else goto +jf
const RET_A = 0x16;
const RET_K = 0x06;

export interface ClassicInstruction {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/** struct sock_filter[]: u16 code, u8 jt, u8 jf, u32 k, little-endian. */
export function encodeClassic(insns: readonly ClassicInstruction[]): Buffer {
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) throw new RangeError(`classic BPF program of ${insns.length} instructions (1..${BPF_MAXINSNS})`);
  const out = Buffer.alloc(insns.length * SOCK_FILTER_SIZE);
  insns.forEach((insn, i) => {
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(insn.jt, i * 8 + 2);
    out.writeUInt8(insn.jf, i * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return out;
}

const RANDOM: ClassicInstruction = { code: LD_W_ABS, jt: 0, jf: 0, k: SKF_AD_RANDOM_OFFSET >>> 0 };

/**
 * `random % newCount + oldCount`: every new SYN to one of slots
 * oldCount..oldCount+newCount-1. Right only while the group's array is
 * oldCount sockets then newCount sockets, in join order (see above).
 */
export function steerToNew(oldCount: number, newCount: number): Buffer {
  count(oldCount, 'old', 0);
  count(newCount, 'new', 1);
  const insns: ClassicInstruction[] = [RANDOM, { code: ALU_MOD_K, jt: 0, jf: 0, k: newCount }];
  if (oldCount > 0) insns.push({ code: ALU_ADD_K, jt: 0, jf: 0, k: oldCount });
  insns.push({ code: RET_A, jt: 0, jf: 0, k: 0 });
  return encodeClassic(insns);
}

/**
 * Every new SYN to one of `slots` (array indices), uniformly: the
 * contiguous form when the slots are a run, else `random % slots.length`
 * followed by a table of jumps (two instructions per slot).
 */
export function steerToSlots(slots: readonly number[]): Buffer {
  if (slots.length === 0) throw new RangeError('steering needs at least one target slot');
  const sorted = [...slots].sort((a, b) => a - b);
  sorted.forEach((s, i) => {
    count(s, 'slot', 0);
    if (i > 0 && sorted[i - 1] === s) throw new RangeError(`slot ${s} given twice`);
  });
  const first = sorted[0]!;
  if (sorted[sorted.length - 1]! - first === sorted.length - 1) return steerToNew(first, sorted.length);
  const maxTable = Math.floor((BPF_MAXINSNS - 3) / 2);
  if (sorted.length > maxTable) throw new RangeError(`steering to ${sorted.length} scattered slots exceeds classic BPF's ${BPF_MAXINSNS} instructions`);
  const insns: ClassicInstruction[] = [RANDOM, { code: ALU_MOD_K, jt: 0, jf: 0, k: sorted.length }];
  sorted.forEach((slot, i) => {
    insns.push({ code: JEQ_K, jt: 0, jf: 1, k: i }, { code: RET_K, jt: 0, jf: 0, k: slot });
  });
  // Unreachable (A < sorted.length), but a classic program must end in a return.
  insns.push({ code: RET_K, jt: 0, jf: 0, k: first });
  return encodeClassic(insns);
}

function count(n: number, what: string, min: number): void {
  if (!Number.isInteger(n) || n < min || n > 0xffff) throw new RangeError(`${what} count must be an integer ${min}..65535 (got ${n})`);
}
