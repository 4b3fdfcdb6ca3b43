// What a worker writes to its stdout and stderr, line by line, into the
// master's log in the master's format, each line saying which worker wrote
// it: a line that is a JSON object (the worker's own pino events, an app's
// structured log) keeps its fields and gains `generation` and `worker` when
// it lacks them; any other line becomes an event of its own with the text
// as its message, at info for stdout and warning for stderr, or at the
// priority of an sd-daemon `<N>` prefix the app wrote itself.
//
// Lines are bounded (a longer one is cut into several, nothing is lost), a
// last line without a newline is flushed when the pipe closes, and the
// master waits for every pipe to close before it exits.
import type { Readable } from 'node:stream';
import { logOutput, pinoLevel, splitPriority, type LogOutput, type LogRecord, type StreamFd } from '../log/logger.js';

/** The longest line passed on as one; journald's own LineMax is 48K. */
export const MAX_LINE_CHARS = 16 * 1024;
/** How long the master waits, once stopped, for its workers' last output. */
export const OUTPUT_FLUSH_TIMEOUT_MS = 1_000;

export interface WorkerLabels {
  readonly generation: number;
  readonly worker: number;
  readonly pid: number;
}

/** Where the lines go: the process's LogOutput. */
export type RecordWriter = Pick<LogOutput, 'writeRecord'>;

const open = new Set<Promise<void>>();

/** Follows a worker's stdout and stderr (spawned with 'pipe' for both) until they close. */
export function pipeWorkerOutput(
  child: { readonly stdout: Readable | null; readonly stderr: Readable | null },
  labels: WorkerLabels,
  output: RecordWriter = logOutput(),
): void {
  if (child.stdout) follow(child.stdout, 1, labels, output);
  if (child.stderr) follow(child.stderr, 2, labels, output);
}

/** Resolves once every followed pipe has closed, or after `timeoutMs`. */
export async function workerOutputClosed(timeoutMs = OUTPUT_FLUSH_TIMEOUT_MS): Promise<void> {
  if (open.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(open), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
}

function follow(stream: Readable, fd: StreamFd, labels: WorkerLabels, output: RecordWriter): void {
  let partial = '';
  const line = (text: string): void => {
    const clean = text.endsWith('\r') ? text.slice(0, -1) : text;
    for (let i = 0; i === 0 || i < clean.length; i += MAX_LINE_CHARS) {
      const [record, verbatim] = recordOf(clean.slice(i, i + MAX_LINE_CHARS), fd, labels);
      output.writeRecord(record, fd, verbatim);
    }
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    partial += chunk;
    let start = 0;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n', start)) {
      line(partial.slice(start, nl));
      start = nl + 1;
    }
    partial = partial.slice(start);
    // A line still growing past the bound is passed on in pieces, so memory stays bounded.
    while (partial.length >= MAX_LINE_CHARS) {
      line(partial.slice(0, MAX_LINE_CHARS));
      partial = partial.slice(MAX_LINE_CHARS);
    }
  });
  stream.on('error', () => {}); // a pipe error ends the stream: 'close' follows
  const closed = new Promise<void>((resolve) =>
    stream.once('close', () => {
      if (partial !== '') line(partial);
      partial = '';
      open.delete(closed);
      resolve();
    }),
  );
  open.add(closed);
}

function jsonObject(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{') || !text.endsWith('}')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The record for one line, and for a JSON line its exact text with the labels it lacked added in front. */
export function recordOf(text: string, fd: StreamFd, labels: WorkerLabels): [LogRecord, string | undefined] {
  const trimmed = text.trim();
  const object = jsonObject(trimmed);
  if (object) {
    const missing: Record<string, number> = {};
    if (!('generation' in object)) missing['generation'] = labels.generation;
    if (!('worker' in object)) missing['worker'] = labels.worker;
    const added = JSON.stringify(missing).slice(1, -1);
    const verbatim = added === '' ? trimmed : trimmed === '{}' ? `{${added}}` : `{${added},${trimmed.slice(1)}`;
    return [{ level: fd === 1 ? 30 : 40, ...missing, ...object }, verbatim];
  }
  const { priority, text: message } = splitPriority(text);
  return [
    {
      level: priority === undefined ? (fd === 1 ? 30 : 40) : pinoLevel(priority),
      time: new Date().toISOString(),
      pid: labels.pid,
      name: 'app',
      generation: labels.generation,
      worker: labels.worker,
      stream: fd === 1 ? 'stdout' : 'stderr',
      msg: message,
    },
    undefined,
  ];
}
