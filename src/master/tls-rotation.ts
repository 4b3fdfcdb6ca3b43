// `tls.rotate: in-place`: new certificates go into the running workers
// (setSecureContext) instead of a new generation. Nothing happens at the
// socket level: no listener changes, nothing queued moves, open connections
// keep the certificate they were accepted with, and new handshakes get the
// new one once their worker has acknowledged. The generation gets a new
// ticket key too: a ticket is a session authenticated by the old
// certificate, and rotating a certificate (perhaps because its key leaked)
// must not let those sessions resume.
import type { Logger } from '../log/logger.js';
import type { ReloadReport, ReloadTls } from '../protocol/control.js';
import type { TlsMaterial } from '../tls/material.js';
import { servedCertificates, workerTls } from '../tls/payload.js';
import { newTicketKey, workerTicketKey } from '../tls/ticket-key.js';
import { monotonic } from './clock.js';
import type { Generation } from './generation.js';

/** How long a running worker gets to confirm its new certificates (a stuck one is the heartbeat's to catch). */
export const TLS_ROTATE_ACK_TIMEOUT_MS = 2_000;

/** The report's `tls` part: how certificates were applied and what is served now. */
export function reloadTls(rotate: ReloadTls['rotate'], materials: ReadonlyMap<string, TlsMaterial>): { tls?: ReloadTls } {
  return materials.size === 0 ? {} : { tls: { rotate, certificates: servedCertificates(materials) } };
}

type ReportBase = Pick<ReloadReport, 'id' | 'trigger' | 'previous' | 'startedAt'>;

/**
 * Swaps `generation`'s certificates for `materials` in every live worker.
 * Workers started later (replacements) get the new material from the
 * generation. Returns the reload's report; `warnings` come from the caller.
 */
export async function rotateInPlace(
  log: Logger,
  generation: Generation,
  materials: ReadonlyMap<string, TlsMaterial>,
  base: ReportBase,
  requestedAtMono: number,
  warnings: readonly string[],
): Promise<ReloadReport> {
  generation.tls = materials;
  generation.ticketKey = newTicketKey();
  const listeners = [...materials.values()].map((m) => ({ address: m.address, tls: workerTls(m) }));
  const workers = generation.liveWorkers();
  const acked = await Promise.all(
    workers.map((w) => w.rotateTls(listeners, workerTicketKey(generation.ticketKey), TLS_ROTATE_ACK_TIMEOUT_MS)),
  );
  const late = workers.filter((w, i) => !acked[i] && w.alive);
  const lateWarnings = late.map(
    (w) => `worker ${w.index} (${w.who}) did not confirm the new certificates within ${TLS_ROTATE_ACK_TIMEOUT_MS} ms; it serves the old ones until it answers or is replaced`,
  );
  for (const w of lateWarnings) log.warn({ reload: base.id }, w);
  return {
    ...base,
    result: 'ok',
    generation: generation.id,
    strategy: null,
    durationMs: monotonic() - requestedAtMono,
    settleMs: 0,
    queuedAtCutover: 0,
    migrated: 0,
    dropped: 0,
    drops: {},
    listeners: [],
    warnings: [...warnings, ...lateWarnings],
    ...reloadTls('in-place', materials),
  };
}
