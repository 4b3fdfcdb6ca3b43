// One log event as one journal line: `<N>` (the syslog priority journald
// reads from the start of each line, SyslogLevelPrefix=yes by default), the
// worker it concerns as `[g<generation> w<index>]`, the message, then the
// other fields as key=value. journald adds the time, the unit and the pid.

const NAMED: Readonly<Record<string, number>> = {
  trace: 7, debug: 7, info: 6, notice: 5, warn: 4, warning: 4, error: 3, err: 3, fatal: 2, crit: 2, critical: 2, alert: 1, emerg: 0,
};

/**
 * pino level → syslog priority (7 debug, 6 info, 4 warning, 3 err, 2 crit);
 * also the level names other loggers write (`"level":"warn"`).
 */
export function syslogPriority(level: unknown, fallback = 6): number {
  if (typeof level === 'string') return NAMED[level.toLowerCase()] ?? fallback;
  if (typeof level !== 'number') return fallback;
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** syslog priority → pino level, for lines that carry their own `<N>` prefix. */
export function pinoLevel(priority: number): number {
  if (priority <= 2) return 60;
  if (priority === 3) return 50;
  if (priority <= 5) return 40;
  if (priority === 6) return 30;
  return 20;
}

/** Splits an sd-daemon style `<N>` prefix off a line. */
export function splitPriority(text: string): { priority: number | undefined; text: string } {
  const m = /^<([0-7])>/.exec(text);
  return m?.[1] ? { priority: Number(m[1]), text: text.slice(3) } : { priority: undefined, text };
}

/** Fields journald records by itself, or that the line already shows. */
const OMITTED = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v', 'generation', 'worker', 'stream']);

/** `[g3 w1] ` when the event is about one worker, else nothing. */
export function workerPrefix(record: Readonly<Record<string, unknown>>): string {
  const { generation, worker } = record;
  return typeof generation === 'number' && typeof worker === 'number' ? `[g${generation} w${worker}] ` : '';
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=\\]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Object && 'message' in v && typeof v.message === 'string') return JSON.stringify(v.message); // pino's err
  return JSON.stringify(v) ?? String(v);
}

/** The journal line (without its newline) for a pino record. */
export function journalLine(record: Readonly<Record<string, unknown>>, priority = syslogPriority(record['level'])): string {
  const msg = typeof record['msg'] === 'string' ? record['msg'] : '';
  const fields = Object.entries(record)
    .filter(([k, v]) => !OMITTED.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`);
  const text = [msg.replace(/\r?\n/g, '\\n'), ...fields].filter((s) => s !== '').join(' ');
  return `<${priority}>${workerPrefix(record)}${text}`;
}
