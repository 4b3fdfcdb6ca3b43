import { pino, type Logger, type LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';

export type { Logger };

/**
 * JSON lines on stdout, one event per line; human-readable when stdout is a
 * terminal (or HANDOVER_LOG_PRETTY=1). Never log key material.
 */
export function createLogger(options: { level?: LevelWithSilent; name?: string; bindings?: Record<string, unknown> } = {}): Logger {
  const level = options.level ?? (process.env['HANDOVER_LOG_LEVEL'] as LevelWithSilent | undefined) ?? 'info';
  const wantPretty = process.env['HANDOVER_LOG_PRETTY'] === '1' || (process.env['HANDOVER_LOG_PRETTY'] !== '0' && process.stdout.isTTY === true);
  const base = { pid: process.pid, ...(options.name ? { name: options.name } : {}), ...options.bindings };
  if (wantPretty) {
    // Loaded only when wanted: workers spawn often and should not pay for it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino({ level, base }, pretty({ colorize: true, sync: true, ignore: 'hostname', translateTime: 'SYS:HH:MM:ss.l' }));
  }
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true }));
}
