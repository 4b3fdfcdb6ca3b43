// Every instruction form src/bpf/asm.ts emits, as a call on the assembler
// and as the LLVM assembly text for the same instruction (LLVM 14 syntax).
// asm.test.ts compares the two encodings.

import { Assembler, R0, R1, R2, R6, R7, R9, R10 } from '../../src/bpf/asm.js';
import type { AluOp, JmpOp } from '../../src/bpf/asm.js';

export interface Form {
  readonly asm: string;
  readonly emit: (p: Assembler) => unknown;
}

const ALU: ReadonlyArray<readonly [AluOp, string]> = [
  ['add', '+='], ['sub', '-='], ['mul', '*='], ['div', '/='], ['or', '|='], ['and', '&='],
  ['lsh', '<<='], ['rsh', '>>='], ['xor', '^='], ['mov', '='], ['arsh', 's>>='],
];
const JMP: ReadonlyArray<readonly [JmpOp, string]> = [
  ['jeq', '=='], ['jgt', '>'], ['jge', '>='], ['jne', '!='], ['jsgt', 's>'], ['jsge', 's>='],
  ['jlt', '<'], ['jle', '<='], ['jslt', 's<'], ['jsle', 's<='],
];

export const FORMS: readonly Form[] = [
  ...ALU.flatMap(([op, text]): Form[] => [
    { asm: `r1 ${text} 7`, emit: (p) => p.alu64(op, R1, 7) },
    { asm: `r1 ${text} -3`, emit: (p) => p.alu64(op, R1, -3) },
    { asm: `r1 ${text} r2`, emit: (p) => p.alu64(op, R1, R2) },
    { asm: `w6 ${text} 2147483647`, emit: (p) => p.alu32(op, R6, 0x7fffffff) },
    { asm: `w1 ${text} w7`, emit: (p) => p.alu32(op, R1, R7) },
  ]),
  { asm: 'r1 = -r1', emit: (p) => p.neg64(R1) },
  { asm: 'w2 = -w2', emit: (p) => p.neg32(R2) },
  { asm: 'r1 = *(u8 *)(r2 + 3)', emit: (p) => p.ldx('b', R1, R2, 3) },
  { asm: 'r1 = *(u16 *)(r2 - 6)', emit: (p) => p.ldx('h', R1, R2, -6) },
  { asm: 'r2 = *(u32 *)(r6 + 32)', emit: (p) => p.ldx('w', R2, R6, 32) },
  { asm: 'r8 = *(u64 *)(r6 + 48)', emit: (p) => p.ldx('dw', { reg: 8 }, R6, 48) },
  { asm: '*(u8 *)(r10 - 1) = r1', emit: (p) => p.stx('b', R10, -1, R1) },
  { asm: '*(u16 *)(r10 - 2) = r1', emit: (p) => p.stx('h', R10, -2, R1) },
  { asm: '*(u32 *)(r10 - 4) = r1', emit: (p) => p.stx('w', R10, -4, R1) },
  { asm: '*(u64 *)(r10 - 512) = r9', emit: (p) => p.stx('dw', R10, -512, R9) },
  { asm: 'lock *(u32 *)(r9 + 8) += r1', emit: (p) => p.atomicAdd('w', R9, 8, R1) },
  { asm: 'lock *(u64 *)(r9 + 16) += r1', emit: (p) => p.atomicAdd('dw', R9, 16, R1) },
  ...JMP.flatMap(([op, text]): Form[] => [
    { asm: `if r1 ${text} 7 goto +3`, emit: (p) => p.jmp(op, R1, 7, 3) },
    { asm: `if r8 ${text} r2 goto -2`, emit: (p) => p.jmp(op, { reg: 8 }, R2, -2) },
    { asm: `if w1 ${text} -5 goto +32767`, emit: (p) => p.jmp32(op, R1, -5, 0x7fff) },
    { asm: `if w1 ${text} w2 goto -32768`, emit: (p) => p.jmp32(op, R1, R2, -0x8000) },
  ]),
  { asm: 'goto +5', emit: (p) => p.ja(5) },
  { asm: 'goto -1', emit: (p) => p.ja(-1) },
  { asm: 'call 1', emit: (p) => p.call(1) },
  { asm: 'call 82', emit: (p) => p.call(82) },
  { asm: 'exit', emit: (p) => p.exit() },
  { asm: 'r0 = 1', emit: (p) => p.mov64(R0, 1) },
  { asm: 'r1 = 0x1122334455667788 ll', emit: (p) => p.ldImm64(R1, 0x1122334455667788n) },
  { asm: 'r2 = -1 ll', emit: (p) => p.ldImm64(R2, -1n) },
  { asm: 'r3 = 0x80000000 ll', emit: (p) => p.ldImm64({ reg: 3 }, 0x80000000n) },
];

/** What llvm-mc is fed: one form per line. */
export const INPUT = FORMS.map((f) => f.asm).join('\n') + '\n';
