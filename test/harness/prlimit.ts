// util-linux's prlimit(1), for tests that lower another process's
// descriptor limit (RLIMIT_NOFILE) while it runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** Whether prlimit is installed (util-linux); the tests that need it skip without it. */
export const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

/** Sets `pid`'s descriptor limit: `soft:hard`, or `soft:` to leave the hard one. */
export function setNofile(pid: number, limits: string): void {
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${limits}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}
