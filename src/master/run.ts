// `handover start`: the master in the foreground until it is stopped.
import type { Config } from '../config/index.js';
import { createLogger } from '../log/logger.js';
import { Notifier } from '../systemd/notify.js';
import { SystemdLink } from './lifecycle.js';
import { confineWorkers, dropMasterCapabilities, warnWritableByWorkers } from './privileges.js';
import { reapOrphansAsInit } from './reaper.js';
import { Supervisor } from './supervisor.js';
import { workerOutputClosed } from './worker-output.js';

const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP'];

/**
 * Variables that describe the master's own situation and would mislead a
 * worker: its stdout is a pipe to the master, not the journal stream, and
 * its log format is the master's to choose (it writes JSON lines that the
 * master renders). NOTIFY_SOCKET and WATCHDOG_* are removed by the Notifier.
 */
const MASTER_ONLY_ENVIRONMENT = ['JOURNAL_STREAM', 'HANDOVER_LOG_FORMAT', 'HANDOVER_LOG_PRETTY'] as const;

/** Signal handlers that only enqueue (the supervisor's event loop acts on them); returns their removal. */
export function forwardSignals(supervisor: Pick<Supervisor, 'dispatch'>): () => void {
  const handlers = SIGNALS.map((signal) => {
    const handler = (): void => supervisor.dispatch({ type: 'signal', signal });
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

/** Runs the master; resolves with the process exit code. Start failures throw. */
export async function runMaster(config: Config): Promise<number> {
  const log = createLogger({ level: config.log.level, format: config.log.format, name: 'master' });
  for (const warning of config.warnings) log.warn({ config: config.file }, warning);
  const link = new SystemdLink(Notifier.fromEnvironment((message) => log.warn(message)), log);
  for (const name of MASTER_ONLY_ENVIRONMENT) delete process.env[name];
  const supervisor = new Supervisor(config, log, link);
  link.attach(supervisor);
  warnWritableByWorkers(config, log);
  confineWorkers(log);
  const reaper = reapOrphansAsInit(() => workerPids(supervisor), log);
  const unforward = forwardSignals(supervisor);
  try {
    try {
      await supervisor.start();
    } catch (err) {
      link.startFailed(err);
      throw err;
    }
    dropMasterCapabilities(supervisor.config, log);
    link.serving();
    return await supervisor.done;
  } finally {
    unforward();
    reaper?.stop();
    link.close();
    await workerOutputClosed();
  }
}

/** Every worker Node spawned that has not been seen to exit: left to Node to reap. */
function workerPids(supervisor: Supervisor): number[] {
  return supervisor.status().generations.flatMap((g) => g.workers.flatMap((w) => (w.pid === null ? [] : [w.pid])));
}
