import { pino, type Logger, type LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';

export type { Logger };

/**
 * JSON lines on stdout, one event per line, every field; for a person at a
 * terminal (or HANDOVER_LOG_PRETTY=1), one short line per event instead: time,
 * level, process and message, with the fields left out (they are what the
 * JSON is for; a reload's report alone would be 30 lines) except an error's.
 * Colours only on a terminal, and never with NO_COLOR. Never log key material.
 */
export function createLogger(options: { level?: LevelWithSilent; name?: string; bindings?: Record<string, unknown> } = {}): Logger {
  const level = options.level ?? (process.env['HANDOVER_LOG_LEVEL'] as LevelWithSilent | undefined) ?? 'info';
  const tty = process.stdout.isTTY === true;
  const wantPretty = process.env['HANDOVER_LOG_PRETTY'] === '1' || (process.env['HANDOVER_LOG_PRETTY'] !== '0' && tty);
  const base = { pid: process.pid, ...(options.name ? { name: options.name } : {}), ...options.bindings };
  if (wantPretty) {
    // Loaded only when wanted: workers spawn often and should not pay for it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    const colorize = tty && !process.env['NO_COLOR'] && process.env['TERM'] !== 'dumb';
    return pino({ level, base }, pretty({ colorize, sync: true, ignore: 'hostname', translateTime: 'SYS:HH:MM:ss.l', hideObject: true }));
  }
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true }));
}
