// bpf/: the instruction encoder, the reuseport programs (eBPF select-or-
// migrate, classic steering), the socket-array model, the kernel probes and
// canaries, and the choice of hand-off strategy they lead to.

export { Assembler, encode, PSEUDO_MAP_FD, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 } from './asm.js';
export type { AluOp, Instruction, JmpOp, Operand, Reg, Size, Target } from './asm.js';
export { passProgram, selectOrMigrateProgram } from './programs.js';
export { DEFAULT_CAPACITY, ReuseportProgram, SELECT_OR_MIGRATE_MIN_KERNEL, VERIFIER_LOG_SIZE } from './reuseport-program.js';
export type { MigrationMode, ReuseportCounters, ReuseportProgramOptions } from './reuseport-program.js';
export { encodeClassic, steerToNew, steerToSlots } from './steering.js';
export type { ClassicInstruction } from './steering.js';
export { ReuseportLayout } from './layout.js';
export { SteeredGroup } from './steered-group.js';
export type { Retirement } from './steered-group.js';
export { CANARY_TIMEOUT_MS, runCanary } from './canary.js';
export type { CanaryMechanism, CanaryResult } from './canary.js';
export { kernelProbe, probeCbpf, probeEbpf, probeKernel, probeSysctl, TCP_MIGRATE_REQ_PATH } from './probe.js';
export type { FeatureProbe, KernelProbe, ProbeOptions, SysctlProbe } from './probe.js';
export { AUTO_ORDER, availability, chooseStrategy, CLASSIC_STEERING_MIN_KERNEL, SYSCTL_LINE } from './choice.js';
export type { ChoiceOptions, Handoff, Rejection, StrategyDecision } from './choice.js';
export { formatKernelCheck, formatProbe } from './report.js';
