// Session ticket keys: one per generation, made by the master from the
// kernel's randomness, kept in memory only (never written to disk, never
// logged), and given to every worker of the generation, so that a client
// resumes on whichever worker the kernel hands its next connection to. A new
// generation gets a new key: its tickets are not accepted by the one before
// (and the reverse), so those clients do a full handshake once.
import { randomBytes } from 'node:crypto';
import { TICKET_KEY_BYTES } from '../protocol/tls.js';

export function newTicketKey(): Buffer {
  return randomBytes(TICKET_KEY_BYTES);
}

/**
 * Test-only: with HANDOVER_TEST_TICKET_KEY_PER_WORKER=1 in the master's
 * environment every worker gets a key of its own, which is what workers
 * without a shared key amount to (a test shows resumption then fails across
 * workers). Not a configuration key: nobody wants it in production.
 */
export const TICKET_KEY_PER_WORKER_ENV = 'HANDOVER_TEST_TICKET_KEY_PER_WORKER';

/** The key a worker of a generation gets, base64 for the IPC message. */
export function workerTicketKey(generationKey: Buffer): string {
  const key = process.env[TICKET_KEY_PER_WORKER_ENV] === '1' ? newTicketKey() : generationKey;
  return key.toString('base64');
}
