// Classic steering programs, the socket-array model, the program's
// instructions, and the sys pieces under them that need no privilege. The
// kernel's own behaviour is checked in test/kernel/bpf.test.ts.

import assert from 'node:assert/strict';
import { fstatSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ReuseportLayout, selectOrMigrateProgram, steerToNew, steerToSlots } from '../../src/bpf/index.js';
import { countSynRecv, joinOrder, listenerSpec, openListeners, socketAddress } from '../../src/net/index.js';
import { bpfSyscallNumber, listen, NotSupportedError } from '../../src/sys/index.js';
import { NativeBlock } from '../../src/sys/native.js';

const words = (b: Buffer): string[] => {
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 8) out.push(b.subarray(i, i + 8).toString('hex'));
  return out;
};

describe('classic steering programs', () => {
  it('random % new + old, as struct sock_filter', () => {
    assert.deepEqual(words(steerToNew(3, 4)), [
      '2000000038f0ffff', // ld [SKF_AD_OFF + SKF_AD_RANDOM]
      '9400000004000000', // A %= 4
      '0400000003000000', // A += 3
      '1600000000000000', // ret A
    ]);
    assert.deepEqual(words(steerToNew(0, 2)), ['2000000038f0ffff', '9400000002000000', '1600000000000000']);
  });

  it('scattered slots: a jump table; a run: the short form', () => {
    assert.deepEqual(steerToSlots([6, 5, 4]), steerToNew(4, 3));
    assert.deepEqual(words(steerToSlots([5, 1])), [
      '2000000038f0ffff',
      '9400000002000000', // A %= 2
      '1500000100000000', // if A == 0 goto +0 else +1
      '0600000001000000', // ret 1
      '1500000101000000', // if A == 1 ...
      '0600000005000000', // ret 5
      '0600000001000000', // ret 1 (unreachable)
    ]);
  });

  it('refuses what cannot be steered to', () => {
    assert.throws(() => steerToNew(2, 0), /new count must be an integer 1..65535/);
    assert.throws(() => steerToSlots([]), /at least one target/);
    assert.throws(() => steerToSlots([1, 1]), /given twice/);
    assert.throws(() => steerToSlots(Array.from({ length: 3000 }, (_, i) => i * 2)), /exceeds classic BPF's 4096 instructions/);
  });
});

describe('ReuseportLayout', () => {
  it('appends on join, moves the last socket into a freed slot', () => {
    const l = new ReuseportLayout(['a0', 'a1', 'a2', 'b0', 'b1']);
    assert.deepEqual(l.leave('a1'), { slot: 1, moved: 'b1' });
    assert.deepEqual(l.slots, ['a0', 'b1', 'a2', 'b0']);
    assert.deepEqual(l.leave('b0'), { slot: 3, moved: undefined }, 'the last one leaves: nothing moves');
    assert.equal(l.join('c0'), 3);
    assert.deepEqual(l.slotsOf(['b1', 'c0', 'gone']), [1, 3]);
    assert.throws(() => l.leave('gone'), /not in the group/);
    assert.throws(() => l.join('c0'), /joined twice/);
  });

  it('slotsSurviving: targets that keep their slot across a planned leave', () => {
    const l = new ReuseportLayout(['a0', 'a1', 'b0', 'b1', 'b2']);
    assert.deepEqual(l.slotsSurviving(['b0', 'b1', 'b2'], 'a0'), [2, 3], 'b2 will move into slot 0');
    assert.deepEqual(l.slotsSurviving(['b0', 'b1', 'b2'], 'b2'), [2, 3], 'a leaving target is no target');
    assert.deepEqual(new ReuseportLayout(['a0', 'b0']).slotsSurviving(['b0'], 'a0'), [], 'the only target moves');
    assert.deepEqual(l.slots, ['a0', 'a1', 'b0', 'b1', 'b2'], 'planning changes nothing');
  });

  it('retiring N old sockets one by one keeps a right program at every moment', () => {
    const l = new ReuseportLayout(['a0', 'a1', 'a2', 'a3', 'b0', 'b1']);
    const fresh = ['b0', 'b1'];
    for (const old of ['a2', 'a0', 'a3', 'a1']) {
      const before = l.slotsSurviving(fresh, old);
      const after = l.clone();
      after.leave(old);
      for (const slot of before) assert.ok(fresh.includes(l.slots[slot]!) && fresh.includes(after.slots[slot]!));
      l.leave(old);
      assert.deepEqual(l.slotsOf(fresh).map((s) => l.slots[s]).sort(), fresh);
    }
    assert.deepEqual(l.slots.slice().sort(), fresh);
  });
});

describe('the select-or-migrate program', () => {
  it('names both maps and fits the verifier easily', () => {
    const p = selectOrMigrateProgram({ sockets: 7, control: 9 });
    const insns = words(p);
    assert.equal(insns.length, 67, '63 instructions, four of them two slots long');
    assert.equal(insns.filter((w) => w === '1812000007000000').length, 2, 'sockets map into R2, twice (two tries)');
    assert.equal(insns.filter((w) => w === '1811000009000000').length, 2, 'control map looked up twice (config, counters)');
    assert.equal(insns.at(-1), '9500000000000000');
  });
});

describe('sys pieces', () => {
  it('knows the bpf() syscall number per architecture', () => {
    assert.equal(bpfSyscallNumber('x64'), 321);
    assert.equal(bpfSyscallNumber('arm64'), 280);
    assert.throws(() => bpfSyscallNumber('ia32'), (err: unknown) => err instanceof NotSupportedError && /the bpf\(\) system call on ia32/.test(err.message));
  });

  it('native blocks round-trip and refuse out-of-range access', () => {
    const b = NativeBlock.from(Buffer.from('handover'));
    try {
      assert.ok(b.address > 0n);
      assert.equal(b.read().toString(), 'handover');
      b.write(Buffer.from('HAND'), 0);
      assert.equal(b.read(0, 8).toString(), 'HANDover');
      assert.throws(() => b.read(4, 8), /out of range/);
    } finally {
      b.free();
    }
    b.free();
    assert.throws(() => b.address, /already freed/);
  });

  it('joinOrder and countSynRecv on loopback listeners of this namespace', () => {
    for (const [host, family] of [['127.0.0.1', 4], ['::1', 6]] as const) {
      const ls = openListeners(listenerSpec({ address: socketAddress(host, 0, family), backlog: 8 }), 3);
      try {
        for (const i of [2, 0, 1]) listen(ls[i]!.fd, 8);
        const inodes = ls.map((l) => fstatSync(l.fd).ino);
        assert.deepEqual(joinOrder(inodes, family).map((ino) => inodes.indexOf(ino)), [2, 0, 1], `IPv${family}`);
        assert.equal(countSynRecv(ls[0]!.port), 0);
      } finally {
        for (const l of ls) l.close();
      }
    }
  });
});
