// The SK_REUSEPORT program of the `bpf` strategy, as raw instructions.
//
// It runs for every new SYN to the group and, because it is loaded with
// expected attach type BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, for every request
// or queued connection that must move off a listener being shut down
// (ctx->migrating_sk set), whatever net.ipv4.tcp_migrate_req says. Both are
// sent to slot `hash % n` of a REUSEPORT_SOCKARRAY that holds only the
// active generation's listeners (slots 0..n-1), so nothing goes to, or
// migrates onto, an old listener about to close. In drop mode a migrating
// request is refused (SK_DROP: the client is reset) and counted instead:
// used when the address's spec changed (TLS switched on or off), so that a
// queue of the old protocol is never served by a listener of the new one.
//
// The control map (an ARRAY) holds the configuration and the counters in
// separate entries, so user space rewriting the configuration never
// overwrites a counter the program is incrementing:
//
//   entry 0  u32 n (active slots), u32 flags          read by the program as one u64
//   entry 1  u64 migrated, u64 dropped, u64 fallback  atomically incremented
//
// `fallback`: neither slot hash % n nor the next one held a listener (one
// left the group since the map was last set), so the kernel's hash picked.

import { BPF_FUNC_map_lookup_elem, BPF_FUNC_sk_select_reuseport, SK_DROP, SK_PASS, SK_REUSEPORT_MD } from '../sys/constants.js';
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R9, R10 } from './asm.js';

export const CONTROL_CONFIG_KEY = 0;
export const CONTROL_COUNTERS_KEY = 1;
export const CONTROL_ENTRIES = 2;
export const CONTROL_VALUE_SIZE = 24;
/** Flag in the configuration entry: refuse migrating requests. */
export const FLAG_DROP_MIGRATING = 1;
export const COUNTER_OFFSET = Object.freeze({ migrated: 0, dropped: 8, fallback: 16 });

const KEY_SLOT = -4; // stack slot for the control map key
const SLOT_SLOT = -8; // stack slot for the socket array key

export interface ReuseportMaps {
  /** BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, u32 key, u64 value. */
  readonly sockets: number;
  /** BPF_MAP_TYPE_ARRAY, u32 key, CONTROL_VALUE_SIZE value, CONTROL_ENTRIES entries. */
  readonly control: number;
}

/** The select-or-migrate program for these maps' descriptors. */
export function selectOrMigrateProgram(maps: ReuseportMaps): Buffer {
  const p = new Assembler();
  p.mov64(R6, R1); // ctx, kept across helper calls
  lookupControl(p, maps.control, CONTROL_CONFIG_KEY);
  p.ldx('dw', R7, R0, 0); // n | flags << 32
  lookupControl(p, maps.control, CONTROL_COUNTERS_KEY);
  p.mov64(R9, R0); // counters
  p.ldx('dw', R8, R6, SK_REUSEPORT_MD.migratingSk); // NULL for a new SYN
  p.jmp('jeq', R8, 0, 'select');
  p.mov64(R1, R7).alu64('rsh', R1, 32).alu64('and', R1, FLAG_DROP_MIGRATING);
  p.jmp('jne', R1, 0, 'drop');

  p.label('select');
  p.mov32(R1, R7); // n (a 32-bit move clears the upper half)
  p.jmp('jeq', R1, 0, 'pass'); // no active set yet: the kernel's hash
  p.ldx('w', R2, R6, SK_REUSEPORT_MD.hash);
  // R2 = hash % n, without BPF_MOD (which LLVM 14 cannot encode for the test)
  p.mov64(R3, R2).alu64('div', R3, R1).alu64('mul', R3, R1).alu64('sub', R2, R3);
  p.stx('w', R10, SLOT_SLOT, R2);
  selectSlot(p, maps.sockets);
  p.jmp('jeq', R0, 0, 'selected');
  // The slot is empty: its listener left the group. Try the next one.
  p.ldx('w', R2, R10, SLOT_SLOT).alu64('add', R2, 1);
  p.mov32(R1, R7);
  p.jmp('jlt', R2, R1, 1).mov64(R2, 0);
  p.stx('w', R10, SLOT_SLOT, R2);
  selectSlot(p, maps.sockets);
  p.jmp('jeq', R0, 0, 'selected');
  count(p, COUNTER_OFFSET.fallback);
  p.ja('pass');

  p.label('selected');
  p.jmp('jeq', R8, 0, 'pass');
  count(p, COUNTER_OFFSET.migrated);
  p.label('pass');
  p.mov64(R0, SK_PASS).exit();

  p.label('drop');
  count(p, COUNTER_OFFSET.dropped);
  p.mov64(R0, SK_DROP).exit();
  return p.assemble();
}

// R0 = &control[key]; an ARRAY lookup within bounds cannot fail, but the
// verifier wants the NULL check.
function lookupControl(p: Assembler, controlFd: number, key: number): void {
  p.mov64(R1, key).stx('w', R10, KEY_SLOT, R1);
  p.mov64(R2, R10).alu64('add', R2, KEY_SLOT);
  p.ldMapFd(R1, controlFd);
  p.call(BPF_FUNC_map_lookup_elem);
  p.jmp('jeq', R0, 0, 'pass');
}

// R0 = bpf_sk_select_reuseport(ctx, sockets, &slot, 0): 0 when selected.
function selectSlot(p: Assembler, socketsFd: number): void {
  p.mov64(R1, R6);
  p.ldMapFd(R2, socketsFd);
  p.mov64(R3, R10).alu64('add', R3, SLOT_SLOT);
  p.mov64(R4, 0);
  p.call(BPF_FUNC_sk_select_reuseport);
}

function count(p: Assembler, offset: number): void {
  p.mov64(R1, 1).atomicAdd('dw', R9, offset, R1);
}

/**
 * The smallest SELECT_OR_MIGRATE program (return SK_PASS: the kernel's
 * choice), for probing whether this host loads the program type at all.
 */
export function passProgram(): Buffer {
  return new Assembler().mov64(R0, SK_PASS).exit().assemble();
}
