// A small eBPF assembler: the instruction forms handover's programs use,
// encoded as the kernel reads them (little-endian: opcode, dst|src<<4,
// 16-bit offset, 32-bit immediate). Every form is checked against what
// `llvm-mc -triple=bpfel -show-encoding` gives for it (test/bpf/asm.test.ts),
// which is also why this has no BPF_MOD and no store-immediate: LLVM 14, the
// Debian 12 assembler, encodes neither.
//
//   const p = new Assembler();
//   p.mov64(R0, 1).jmp('jeq', R1, 0, 'out').mov64(R0, 0).label('out').exit();
//   p.assemble() // → Buffer of 8-byte instructions

export interface Reg {
  readonly reg: number;
}

const reg = (n: number): Reg => Object.freeze({ reg: n });
export const R0 = reg(0);
export const R1 = reg(1);
export const R2 = reg(2);
export const R3 = reg(3);
export const R4 = reg(4);
export const R5 = reg(5);
export const R6 = reg(6);
export const R7 = reg(7);
export const R8 = reg(8);
export const R9 = reg(9);
/** The read-only frame pointer; the stack is the 512 bytes below it. */
export const R10 = reg(10);

/** A register, or a signed 32-bit immediate. */
export type Operand = Reg | number;

// Instruction classes, source bits, sizes and modes (linux/bpf_common.h, linux/bpf.h).
const LDX = 0x01;
const STX = 0x03;
const ALU = 0x04;
const JMP = 0x05;
const JMP32 = 0x06;
const ALU64 = 0x07;
const LD_IMM64 = 0x18; // BPF_LD | BPF_DW | BPF_IMM
const SRC_X = 0x08;
const MEM = 0x60;
const ATOMIC = 0xc0;

export type Size = 'b' | 'h' | 'w' | 'dw';
const SIZE: Readonly<Record<Size, number>> = { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 };

export type AluOp = 'add' | 'sub' | 'mul' | 'div' | 'or' | 'and' | 'lsh' | 'rsh' | 'xor' | 'mov' | 'arsh';
const ALU_OP: Readonly<Record<AluOp, number>> = {
  add: 0x00, sub: 0x10, mul: 0x20, div: 0x30, or: 0x40, and: 0x50, lsh: 0x60, rsh: 0x70, xor: 0xa0, mov: 0xb0, arsh: 0xc0,
};
const NEG = 0x80;

export type JmpOp = 'jeq' | 'jgt' | 'jge' | 'jne' | 'jsgt' | 'jsge' | 'jlt' | 'jle' | 'jslt' | 'jsle';
const JMP_OP: Readonly<Record<JmpOp, number>> = {
  jeq: 0x10, jgt: 0x20, jge: 0x30, jne: 0x50, jsgt: 0x60, jsge: 0x70, jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0,
};
const JA = 0x00;
const CALL = 0x80;
const EXIT = 0x90;

/** BPF_PSEUDO_MAP_FD: the ld_imm64 immediate is a map descriptor, replaced by the map at load time. */
export const PSEUDO_MAP_FD = 1;

/** One 8-byte slot. A ld_imm64 takes two. */
export interface Instruction {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

/** A jump target: a label name, or an offset in slots from the next instruction. */
export type Target = string | number;

interface Pending {
  readonly insn: Instruction;
  readonly target?: string;
}

export class Assembler {
  readonly #slots: Pending[] = [];
  readonly #labels = new Map<string, number>();

  /** The number of 8-byte slots so far. */
  get length(): number {
    return this.#slots.length;
  }

  /** Names the position of the next instruction. */
  label(name: string): this {
    if (this.#labels.has(name)) throw new Error(`bpf asm: label ${name} defined twice`);
    this.#labels.set(name, this.#slots.length);
    return this;
  }

  alu64(op: AluOp, dst: Reg, src: Operand): this {
    return this.#alu(ALU64, op, dst, src);
  }

  alu32(op: AluOp, dst: Reg, src: Operand): this {
    return this.#alu(ALU, op, dst, src);
  }

  mov64(dst: Reg, src: Operand): this {
    return this.alu64('mov', dst, src);
  }

  mov32(dst: Reg, src: Operand): this {
    return this.alu32('mov', dst, src);
  }

  neg64(dst: Reg): this {
    return this.#emit({ code: ALU64 | NEG, dst: dst.reg, src: 0, off: 0, imm: 0 });
  }

  neg32(dst: Reg): this {
    return this.#emit({ code: ALU | NEG, dst: dst.reg, src: 0, off: 0, imm: 0 });
  }

  /** dst = *(size *)(src + off) */
  ldx(size: Size, dst: Reg, src: Reg, off: number): this {
    return this.#emit({ code: LDX | MEM | SIZE[size], dst: dst.reg, src: src.reg, off: int16(off), imm: 0 });
  }

  /** *(size *)(dst + off) = src */
  stx(size: Size, dst: Reg, off: number, src: Reg): this {
    return this.#emit({ code: STX | MEM | SIZE[size], dst: dst.reg, src: src.reg, off: int16(off), imm: 0 });
  }

  /** lock *(size *)(dst + off) += src (BPF_ATOMIC BPF_ADD, once called XADD). */
  atomicAdd(size: 'w' | 'dw', dst: Reg, off: number, src: Reg): this {
    return this.#emit({ code: STX | ATOMIC | SIZE[size], dst: dst.reg, src: src.reg, off: int16(off), imm: 0 });
  }

  /** if (dst op src) goto target: 64-bit compare. */
  jmp(op: JmpOp, dst: Reg, src: Operand, target: Target): this {
    return this.#jump(JMP, op, dst, src, target);
  }

  /** if (dst op src) goto target: compares the low 32 bits (Linux 5.1). */
  jmp32(op: JmpOp, dst: Reg, src: Operand, target: Target): this {
    return this.#jump(JMP32, op, dst, src, target);
  }

  /** goto target */
  ja(target: Target): this {
    return this.#emit({ code: JMP | JA, dst: 0, src: 0, off: 0, imm: 0 }, target);
  }

  /** Calls helper `id`; result in R0, R1–R5 clobbered. */
  call(helper: number): this {
    return this.#emit({ code: JMP | CALL, dst: 0, src: 0, off: 0, imm: int32(helper) });
  }

  exit(): this {
    return this.#emit({ code: JMP | EXIT, dst: 0, src: 0, off: 0, imm: 0 });
  }

  /** dst = a 64-bit immediate (two slots). */
  ldImm64(dst: Reg, value: bigint): this {
    const v = BigInt.asUintN(64, value);
    this.#emit({ code: LD_IMM64, dst: dst.reg, src: 0, off: 0, imm: int32Bits(Number(v & 0xffffffffn)) });
    return this.#emit({ code: 0, dst: 0, src: 0, off: 0, imm: int32Bits(Number(v >> 32n)) });
  }

  /** dst = the map whose descriptor is `fd` (ld_imm64 with BPF_PSEUDO_MAP_FD; two slots). */
  ldMapFd(dst: Reg, fd: number): this {
    this.#emit({ code: LD_IMM64, dst: dst.reg, src: PSEUDO_MAP_FD, off: 0, imm: int32(fd) });
    return this.#emit({ code: 0, dst: 0, src: 0, off: 0, imm: 0 });
  }

  /** The instructions, with label targets resolved. */
  instructions(): Instruction[] {
    return this.#slots.map((p, i) => {
      if (p.target === undefined) return p.insn;
      const at = this.#labels.get(p.target);
      if (at === undefined) throw new Error(`bpf asm: undefined label ${p.target}`);
      return { ...p.insn, off: int16(at - (i + 1)) };
    });
  }

  /** The program as the kernel takes it: 8 bytes per slot. */
  assemble(): Buffer {
    return encode(this.instructions());
  }

  #alu(cls: number, op: AluOp, dst: Reg, src: Operand): this {
    const code = cls | ALU_OP[op];
    if (typeof src === 'number') return this.#emit({ code, dst: dst.reg, src: 0, off: 0, imm: int32(src) });
    return this.#emit({ code: code | SRC_X, dst: dst.reg, src: src.reg, off: 0, imm: 0 });
  }

  #jump(cls: number, op: JmpOp, dst: Reg, src: Operand, target: Target): this {
    const code = cls | JMP_OP[op];
    const insn = typeof src === 'number'
      ? { code, dst: dst.reg, src: 0, off: 0, imm: int32(src) }
      : { code: code | SRC_X, dst: dst.reg, src: src.reg, off: 0, imm: 0 };
    return this.#emit(insn, target);
  }

  #emit(insn: Instruction, target?: Target): this {
    if (typeof target === 'number') this.#slots.push({ insn: { ...insn, off: int16(target) } });
    else if (target === undefined) this.#slots.push({ insn });
    else this.#slots.push({ insn, target });
    return this;
  }
}

/** 8 bytes per instruction, little-endian (bpfel). */
export function encode(insns: readonly Instruction[]): Buffer {
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, i) => {
    out.writeUInt8(insn.code, i * 8);
    out.writeUInt8(((insn.src & 0xf) << 4) | (insn.dst & 0xf), i * 8 + 1);
    out.writeInt16LE(insn.off, i * 8 + 2);
    out.writeInt32LE(insn.imm, i * 8 + 4);
  });
  return out;
}

function int16(n: number): number {
  if (!Number.isInteger(n) || n < -0x8000 || n > 0x7fff) throw new RangeError(`bpf asm: offset ${n} is not a signed 16-bit integer`);
  return n;
}

// Immediates are signed: the kernel sign-extends them to 64 bits, so a value
// such as 0xffffffff would silently mean -1. Refuse it instead.
function int32(n: number): number {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`bpf asm: immediate ${n} is not a signed 32-bit integer`);
  return n;
}

function int32Bits(u: number): number {
  return u | 0;
}
