// Where this process's log lines go, in its one chosen format: its own pino
// events, and (in the master) the lines its workers write, which arrive as
// records and are rendered the same way. Everything is written synchronously
// through one destination per stream, so lines never interleave mid-line.
import { isatty } from 'node:tty';
import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { LogFormat } from './format.js';
import { journalLine } from './journal.js';

/** What pino writes its lines to. */
export interface LineSink {
  write(line: string): void;
}

export type LogRecord = Readonly<Record<string, unknown>>;
export type StreamFd = 1 | 2;

export class LogOutput {
  private readonly raw = new Map<StreamFd, LineSink>();
  private readonly pretty = new Map<StreamFd, LineSink>();

  constructor(readonly format: LogFormat) {}

  /** The sink for this process's own pino events (stdout). */
  get destination(): LineSink {
    if (this.format === 'json') return this.rawSink(1);
    if (this.format === 'pretty') return this.prettySink(1);
    return { write: (line) => this.writeRecord(parseRecord(line), 1) };
  }

  /**
   * Writes one event. `verbatim` is the exact JSON text of `record`, kept as
   * it is in the json format (a worker's own JSON line passes through
   * untouched, number formatting included).
   */
  writeRecord(record: LogRecord, fd: StreamFd, verbatim?: string): void {
    switch (this.format) {
      case 'json':
        return this.rawSink(fd).write(`${verbatim ?? JSON.stringify(record)}\n`);
      case 'journal':
        return this.rawSink(fd).write(`${journalLine(record)}\n`);
      case 'pretty':
        return this.prettySink(fd).write(`${JSON.stringify(record)}\n`);
    }
  }

  private rawSink(fd: StreamFd): LineSink {
    let sink = this.raw.get(fd);
    if (!sink) {
      sink = pino.destination({ dest: fd, sync: true });
      this.raw.set(fd, sink);
    }
    return sink;
  }

  private prettySink(fd: StreamFd): LineSink {
    let sink = this.pretty.get(fd);
    if (!sink) {
      // Loaded only when wanted: workers spawn often and should not pay for it.
      const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
      sink = pretty({
        colorize: isatty(fd),
        sync: true,
        destination: fd,
        ignore: 'hostname,generation,worker',
        translateTime: 'SYS:HH:MM:ss.l',
        messageFormat: (record, key) => `${prefixOf(record)}${String(record[key] ?? '')}`,
      });
      this.pretty.set(fd, sink);
    }
    return sink;
  }
}

function prefixOf(record: Record<string, unknown>): string {
  const { generation, worker } = record;
  return typeof generation === 'number' && typeof worker === 'number' ? `[g${generation} w${worker}] ` : '';
}

function parseRecord(line: string): LogRecord {
  try {
    const value: unknown = JSON.parse(line);
    if (value !== null && typeof value === 'object') return value as LogRecord;
  } catch {
    /* not JSON: keep the text */
  }
  return { level: 30, msg: line.trimEnd() };
}

let current: LogOutput | undefined;

/** This process's log output (json until a logger chose a format). */
export function logOutput(): LogOutput {
  current ??= new LogOutput('json');
  return current;
}

/** Makes `format` this process's log output; returns it. */
export function useLogOutput(format: LogFormat): LogOutput {
  if (current?.format !== format) current = new LogOutput(format);
  return current;
}
