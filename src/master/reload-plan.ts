// Pure decisions of a reload: which strategy applies, what happens to each
// address, and how the cutover's figures are counted. Kept apart from the
// flow so they can be read (and tested) on their own.
import type { CounterSnapshot } from '../metrics/kernel.js';
import type { ListenerSpec } from '../net/index.js';

export type Trigger = 'signal' | 'control' | 'watch';
import type { EffectiveStrategy } from '../net/index.js';
export type { EffectiveStrategy };
export type ReloadResult = 'ok' | 'invalid' | 'rolled_back';

/**
 * Per address: `handoff` (same spec: the strategy moves the queue), `open`
 * (new address), `close` (address removed), `replace` (protocol changed, e.g.
 * TLS switched on: not migrated into the incompatible listener on purpose).
 */
export type ListenerAction = 'handoff' | 'open' | 'close' | 'replace';

export interface ListenerPlan {
  readonly address: string;
  readonly action: ListenerAction;
  /** For `handoff` under `inherit`: the new generation takes the old sockets. */
  readonly inherit: boolean;
}

export interface DrainFigures {
  /** Connections the old workers had open when they stopped accepting. */
  readonly drained: number;
  /** Connections cut at drain_timeout, plus workers the master had to kill. */
  readonly killed: number;
  readonly durationMs: number;
}

export interface ReloadReport {
  readonly id: number;
  readonly trigger: Trigger;
  readonly result: ReloadResult;
  readonly reason?: string;
  readonly generation: number | null;
  readonly previous: number | null;
  readonly strategy: EffectiveStrategy | null;
  readonly startedAt: string;
  /** From the request to the old listeners shut down (steps 1-5). */
  readonly durationMs: number;
  readonly queuedAtCutover: number;
  readonly migrated: number;
  readonly dropped: number;
  readonly counters?: CounterSnapshot;
  readonly listeners: readonly ListenerPlan[];
  readonly warnings: readonly string[];
  drain?: DrainFigures;
}

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
export function countCutover(queued: number, migrationOn: boolean, delta: CounterSnapshot): { migrated: number; dropped: number } {
  if (!migrationOn) return { migrated: 0, dropped: queued };
  const dropped = Math.min(queued, delta.TCPMigrateReqFailure);
  return { migrated: queued - dropped, dropped };
}
