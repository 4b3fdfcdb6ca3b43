/**
 * Tests that run processes as nobody need the checkout (and node itself) to
 * be within nobody's reach: a clone under a 0700 directory, or a node under
 * /root, is not, which says nothing of handover.
 */
import { spawnSync } from 'node:child_process';

export const NOBODY = 65534;

/** Why nobody cannot read `paths` with this node, or undefined when it can. */
export function nobodyCannotRead(...paths: string[]): string | undefined {
  const probe = spawnSync(process.execPath, ['-e', `for (const p of ${JSON.stringify(paths)}) require('node:fs').accessSync(p)`],
    { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
  if (probe.error) return `nobody cannot run ${process.execPath}: ${probe.error.message}`;
  if (probe.status === 0) return undefined;
  const line = (probe.stderr ?? '').split('\n').find((l) => /^Error|EACCES|ENOENT/.test(l)) ?? `exit ${probe.status}`;
  return `the checkout is not readable by nobody (${line.trim()})`;
}
