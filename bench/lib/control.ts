// Polling a handover master between reloads on its control socket, with the
// project's own client (no CLI process, so no CLI start-up in the figures).
import { request } from '../../src/cli/client.js';

const ANSWER_TIMEOUT_MS = 10_000;
const POLL_MS = 20;

/** Polls `status` until only one generation is left (the previous one drained), or the deadline. */
export async function drained(socket: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { response } = await request(socket, { cmd: 'status' }, ANSWER_TIMEOUT_MS);
    const generations = response.ok ? ((response.result as { generations?: unknown[] } | undefined)?.generations ?? []) : [];
    if (response.ok && generations.length <= 1) return true;
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
  return false;
}
