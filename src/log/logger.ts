import { pino, type Logger, type LevelWithSilent } from 'pino';
import { chooseLogFormat, type LogFormat } from './format.js';
import { useLogOutput } from './output.js';

export type { Logger };
export { chooseLogFormat, isJournalStream, LOG_FORMATS, type LogFormat } from './format.js';
export { logOutput, type LogOutput, type LogRecord, type StreamFd } from './output.js';
export { pinoLevel, splitPriority } from './journal.js';

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  readonly name?: string;
  readonly bindings?: Record<string, unknown>;
  /** `auto` (the default) picks journal, pretty or json from where stdout goes: see chooseLogFormat. */
  readonly format?: LogFormat | 'auto';
}

/**
 * One event per line on stdout, in the format chosen by chooseLogFormat:
 * JSON lines, human-readable, or journal lines. Never log key material.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env['HANDOVER_LOG_LEVEL'] as LevelWithSilent | undefined) ?? 'info';
  const output = useLogOutput(chooseLogFormat(options.format ?? 'auto'));
  const base = { pid: process.pid, ...(options.name ? { name: options.name } : {}), ...options.bindings };
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, output.destination);
}
