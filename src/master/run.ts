// `handover start`: the master in the foreground until it is stopped.
import type { Config } from '../config/index.js';
import { createLogger } from '../log/logger.js';
import { Supervisor } from './supervisor.js';

const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP'];

/** Runs the master; resolves with the process exit code. Start failures throw. */
export async function runMaster(config: Config): Promise<number> {
  const log = createLogger({ level: config.log.level, name: 'master' });
  for (const warning of config.warnings) log.warn({ config: config.file }, warning);
  const supervisor = new Supervisor(config, log);
  // Signal handlers only enqueue; the supervisor's event loop acts on them.
  const handlers = SIGNALS.map((signal) => {
    const handler = (): void => supervisor.dispatch({ type: 'signal', signal });
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    await supervisor.start();
    return await supervisor.done;
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
