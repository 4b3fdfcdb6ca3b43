// What stops a master's start before it serves anything.

import { findForeignListeners, type ListenerSpec } from '../net/index.js';

/** A start that could not complete: the message is what the operator reads. */
export class StartError extends Error {
  override name = 'StartError';
}

/**
 * A listening socket that is not ours on one of our ports: a stale master, or
 * a second instance with the same uid, would silently take a share of the
 * connections (the kernel lets the same uid join a reuseport group).
 */
export function refuseForeignListeners(specs: readonly ListenerSpec[]): void {
  for (const spec of specs) {
    if (spec.address.port === 0) continue;
    const foreign = findForeignListeners(spec.address);
    if (foreign.length === 0) continue;
    const who = foreign.map((f) => (f.pid ? `pid ${f.pid} (${f.command ?? '?'})` : `${f.local}, owner unknown`));
    throw new StartError(`${spec.address.text} is already in use by ${[...new Set(who)].join(', ')}: stop it first`);
  }
}
