// What the strategy tests share: configuration, the old generation's pids,
// queues read with ss inside the namespace, reloads over the control socket,
// and load summaries in one line.
import { writeFileSync } from 'node:fs';
import type { LoadSummary } from '../harness/load.js';
import type { MasterProcess, ReloadReport, Status } from '../harness/master.js';
import { HELLO, until } from '../harness/master.js';
import type { Netns } from '../harness/netns.js';

export const PORT = 8080;
export const URL_ = `http://127.0.0.1:${PORT}/`;

export interface StrategyConfig {
  readonly strategy: string;
  readonly workers?: number;
  readonly drain?: string;
  /** Extra `listen:` entries (YAML list items, indented two spaces). */
  readonly listen?: readonly string[];
  /** Serve PORT over TLS with this certificate and key. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export function yaml(c: StrategyConfig): string {
  return [
    `app: ${HELLO}`,
    `workers: ${c.workers ?? 2}`,
    'listen:',
    `  - address: 127.0.0.1:${PORT}`,
    ...(c.tls ? [`    tls: { cert: ${c.tls.cert}, key: ${c.tls.key} }`] : []),
    ...(c.listen ?? []),
    `reload: { strategy: ${c.strategy}, drain_timeout: ${c.drain ?? '8s'}, settle: 0s, watch: false }`,
    '',
  ].join('\n');
}

export function activePids(s: Status): number[] {
  return (s.generations.find((g) => g.generation === s.generation)?.workers ?? []).flatMap((w) => (w.pid === null ? [] : [w.pid]));
}

export function signalAll(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

/** Connections in the accept queues of every listener on `port` in the namespace. */
export async function queuedOn(ns: Netns, port = PORT): Promise<number> {
  return (await ns.listeners(port)).reduce((n, l) => n + l.recvQ, 0);
}

/** Waits until at least `n` connections are queued on `port`; returns how many. */
export function queued(ns: Netns, n: number, port = PORT, timeoutMs = 10_000): Promise<number> {
  return until(async () => {
    const q = await queuedOn(ns, port);
    return q >= n ? q : undefined;
  }, timeoutMs, `${n} connections queued on port ${port}`);
}

export function rewrite(master: MasterProcess, text: string): void {
  writeFileSync(master.configFile, `${text}control: { socket: ${master.controlSocket} }\n`);
}

/** One reload over the control socket; the report, whatever its result. */
export async function reload(master: MasterProcess): Promise<ReloadReport> {
  const answer = await master.control({ cmd: 'reload' });
  if (!answer.result || typeof answer.result !== 'object') throw new Error(`reload: no report: ${JSON.stringify(answer)}`);
  return answer.result as ReloadReport;
}

export const short = (s: LoadSummary): string => JSON.stringify({ ...s, workers: Object.keys(s.workers).length });

export const failed = (s: LoadSummary): number => Object.values(s.errors).reduce((a, b) => a + b, 0);
