// Loading a configuration without stalling the caller's event loop. The
// master reloads while it serves control requests and watches heartbeats;
// a 1 MiB file costs the YAML parser 1-3 s of CPU (measured on a busy
// 2-core machine: flow collections are the slowest shape, 40,000 env keys
// ~0.8 s), far longer than anything else the master does in one turn.
//
// Small files, which is nearly all of them, are parsed in line: a thread
// costs more than their parse. Larger ones are parsed in a worker thread with
// a deadline and a heap limit; the result is the same Config (frozen again
// on this side) or the same ConfigError.

import { statSync } from 'node:fs';
import { ConfigError, deepFreeze, loadConfig, ResourceShortage, type ConfigProblem } from './load.js';
import { MAX_CONFIG_BYTES } from './limits.js';
import type { Config } from './types.js';

/** Parsed in line up to this size: at most ~50 ms of CPU for the slowest shape. */
export const INLINE_PARSE_MAX_BYTES = 16 * 1024;
/** A parse that takes longer than this is abandoned (the thread terminated) and refused. */
export const CONFIG_PARSE_TIMEOUT_MS = 20_000;
/** Heap of the parsing thread: a 1 MiB document needs well under 100 MB. */
const PARSE_HEAP_MB = 256;

// Compiled JavaScript only: Node 20 does not run a worker's entry through
// the loader hooks tsx installs, so tests of the thread path load dist/.
const THREAD_ENTRY = new URL('./load-thread.js', import.meta.url);

/** What the thread posts back: the structured clone of a Config, or of a ConfigError's parts. */
export type ThreadAnswer =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[]; readonly controlSocket: string | undefined }
  | { readonly ok: false; readonly failure: string }
  | { readonly ok: false; readonly shortage: { readonly file: string; readonly code: string; readonly doing: string } };

export interface AsyncLoadOptions {
  /** Parse in line up to this many bytes (tests set 0 to force the thread). */
  readonly inlineMaxBytes?: number;
  readonly timeoutMs?: number;
}

/**
 * Like loadConfig, but a file above INLINE_PARSE_MAX_BYTES is parsed in a
 * worker thread. Rejects with ConfigError exactly where loadConfig throws it.
 */
export async function loadConfigAsync(file: string, options: AsyncLoadOptions = {}): Promise<Config> {
  const inlineMax = options.inlineMaxBytes ?? INLINE_PARSE_MAX_BYTES;
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return loadConfig(file); // fails fast, with the located message
  }
  // Too large is refused by loadConfig before it reads a byte.
  if (size <= inlineMax || size > MAX_CONFIG_BYTES) return loadConfig(file);
  // Loaded here, not at the top: most files never need a thread, and
  // node:worker_threads is a few modules `handover check` need not compile.
  const { Worker } = await import('node:worker_threads');
  const answer = await parseInThread(Worker, file, options.timeoutMs ?? CONFIG_PARSE_TIMEOUT_MS);
  if (answer.ok) return deepFreeze(answer.config);
  if ('failure' in answer) throw new Error(answer.failure);
  if ('shortage' in answer) throw new ResourceShortage(answer.shortage.file, answer.shortage.code, answer.shortage.doing);
  const err = new ConfigError(answer.problems);
  err.controlSocket = answer.controlSocket;
  throw err;
}

function parseInThread(Worker: typeof import('node:worker_threads').Worker, file: string, timeoutMs: number): Promise<ThreadAnswer> {
  return new Promise((resolve) => {
    const worker = new Worker(THREAD_ENTRY, {
      workerData: { file },
      resourceLimits: { maxOldGenerationSizeMb: PARSE_HEAP_MB },
      stdout: false,
      stderr: false,
    });
    let settled = false;
    const finish = (answer: ThreadAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(answer);
    };
    const refuse = (message: string): void => finish({ ok: false, problems: [{ file, path: '', message }], controlSocket: undefined });
    const timer = setTimeout(() => refuse(`parsing took longer than ${timeoutMs} ms; refused`), timeoutMs);
    worker.once('message', (answer: ThreadAnswer) => finish(answer));
    worker.once('error', (err: NodeJS.ErrnoException) => {
      // A thread that cannot start for want of descriptors says so only in its message ("Worker initialization failure: EMFILE").
      const init = err.code === 'ERR_WORKER_INIT_FAILED' ? /: (E[A-Z]+)$/.exec(err.message)?.[1] : undefined;
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') refuse(`parsing needed more than ${PARSE_HEAP_MB} MB of memory; refused`);
      else if (init && ResourceShortage.isShortage(init)) finish({ ok: false, shortage: { file, code: init, doing: `start the thread that parses ${file}` } });
      else finish({ ok: false, failure: `configuration parser thread failed: ${err.message}` });
    });
    worker.once('exit', (code) => finish({ ok: false, failure: `configuration parser thread exited with code ${code} before answering` }));
  });
}
