// `handover start`: the master in the foreground until it is stopped.
import type { Config } from '../config/index.js';
import { createLogger } from '../log/logger.js';
import { Supervisor } from './supervisor.js';

const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP'];

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
  const log = createLogger({ level: config.log.level, name: 'master' });
  const supervisor = new Supervisor(config, log);
  const unforward = forwardSignals(supervisor);
  try {
    await supervisor.start();
    return await supervisor.done;
  } finally {
    unforward();
  }
}
