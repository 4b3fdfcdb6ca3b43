// The restart policy on its own (the behaviour with real processes is in core.test.ts).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { backoffDelay, decideRestart } from '../../src/master/restart.js';

const restart = { minUptimeMs: 5_000, backoffMs: 100, backoffMaxMs: 1_000 };
const now = 100_000;

it('a worker that served long enough is replaced at once and resets the count', () => {
  const d = decideRestart({ startedAt: now - 6_000, servedAt: now - 5_900 }, 4, restart, false, true, now);
  assert.deepEqual(d, { failures: 0, delayMs: 0, keepSocket: true, crashLoop: false });
});

it('one early death of a worker that served is an accident: at once, socket kept without migration', () => {
  assert.deepEqual(decideRestart({ startedAt: now - 1_500, servedAt: now - 1_400 }, 0, restart, false, true, now), {
    failures: 1, delayMs: 0, keepSocket: true, crashLoop: false,
  });
  assert.equal(decideRestart({ startedAt: now - 1_500, servedAt: now - 1_400 }, 0, restart, true, true, now).keepSocket, false, 'with migration the queue moves to the siblings');
});

it('a worker that never got ready, or a second early death, backs off; the socket is never kept across it', () => {
  const never = decideRestart({ startedAt: now - 50, servedAt: undefined }, 0, restart, false, true, now);
  assert.deepEqual(never, { failures: 1, delayMs: 100, keepSocket: false, crashLoop: false });
  const second = decideRestart({ startedAt: now - 1_000, servedAt: now - 900 }, 1, restart, false, true, now);
  assert.deepEqual(second, { failures: 2, delayMs: 200, keepSocket: false, crashLoop: false });
  assert.equal(decideRestart({ startedAt: now - 10, servedAt: undefined }, 2, restart, false, true, now).crashLoop, true);
});

it('backoff doubles up to its cap', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((f) => backoffDelay(f, restart)), [0, 100, 200, 400, 800, 1_000, 1_000]);
});

it('the last slot with a live worker backs off by restart.backoff only, never doubled', () => {
  const crashLooping = decideRestart({ startedAt: now - 10, servedAt: undefined }, 6, restart, false, false, now);
  assert.equal(crashLooping.delayMs, 100, 'not the 1 s cap: every slot would be dark that long');
  assert.equal(crashLooping.crashLoop, true);
  assert.equal(decideRestart({ startedAt: now - 10, servedAt: undefined }, 6, restart, false, true, now).delayMs, 1_000, 'with a sibling serving, the cap applies');
});
