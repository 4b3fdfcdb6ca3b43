// Pure decisions of a reload: which strategy applies, what happens to each
// address, and how the cutover's figures are counted. Kept apart from the
// flow so they can be read (and tested) on their own.
import type { ListenerSpec } from '../net/index.js';

import type { EffectiveStrategy, ListenerAction, ListenerPlan } from '../protocol/control.js';
export type { DrainFigures, ListenerAction, ListenerPlan, ReloadReport, ReloadResult, Trigger } from '../protocol/control.js';

/** True when a listener of spec `a` may hand its connections to one of spec `b`. */
function compatible(a: ListenerSpec, b: ListenerSpec): boolean {
  // backlog is not a protocol setting: listen(2) sets it per socket.
  return a.tls === b.tls && a.v6only === b.v6only && a.address.family === b.address.family;
}

export function planListeners(
  previous: readonly ListenerSpec[],
  next: readonly ListenerSpec[],
  strategy: EffectiveStrategy,
): ListenerPlan[] {
  const plans: ListenerPlan[] = [];
  for (const spec of next) {
    const old = previous.find((p) => p.address.text === spec.address.text);
    const action: ListenerAction = !old ? 'open' : compatible(old, spec) ? 'handoff' : 'replace';
    plans.push({ address: spec.address.text, action, inherit: action === 'handoff' && strategy === 'inherit' });
  }
  for (const old of previous) {
    if (!next.some((s) => s.address.text === old.address.text)) plans.push({ address: old.address.text, action: 'close', inherit: false });
  }
  return plans;
}

/**
 * Connections are counted from the queue snapshot taken just before the
 * cutover (FACTS.md: TCPMigrateReqSuccess counts migrations, and one request
 * can migrate twice); the failure counter says how many of them found no
 * listener to move to.
 */
export function countCutover(queued: number, migrationOn: boolean, migrationFailures: number): { migrated: number; dropped: number } {
  if (!migrationOn) return { migrated: 0, dropped: queued };
  const dropped = Math.min(queued, Math.max(0, migrationFailures));
  return { migrated: queued - dropped, dropped };
}
