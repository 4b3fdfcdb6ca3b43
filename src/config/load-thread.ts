// The worker-thread side of loadConfigAsync: one file, one answer, exit.
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, loadConfig, ResourceShortage } from './load.js';
import type { ThreadAnswer } from './load-async.js';

const { file } = workerData as { file: string };
let answer: ThreadAnswer;
try {
  answer = { ok: true, config: loadConfig(file) };
} catch (err) {
  answer =
    err instanceof ConfigError
      ? { ok: false, problems: err.problems, controlSocket: err.controlSocket }
      : err instanceof ResourceShortage
        ? { ok: false, shortage: { file: err.file, code: err.code, doing: err.doing } }
        : { ok: false, failure: err instanceof Error ? err.message : String(err) };
}
parentPort?.postMessage(answer);
