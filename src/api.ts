// The programmatic API: a master started from an object instead of a file.
//
// The master's model is a configuration *file*: a reload re-reads it, so
// that what serves is always what the file says. An object given to start()
// is therefore validated (the same schema and checks as a file, problems
// named by key path), its relative paths made absolute, and written as JSON
// (which is YAML) into a private temporary directory that the master uses
// as its file; reload(newConfig) replaces that file, then reloads. The
// master itself is the one `handover start` runs, used through its public
// surface only: new Supervisor(config, log), start(), dispatch(), status(),
// done. What `handover start` adds around it for a whole process (systemd,
// capabilities, reaping as PID 1, the environment) a library leaves alone.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigOptions } from './config/options.js';
import { ConfigError } from './config/problems.js';
import type { Config } from './config/types.js';
import type { Logger } from './log/logger.js';
import type { MasterStatus, ReloadReport } from './protocol/control.js';

/** Names the options in configuration errors, where a file name would stand. */
const ORIGIN = 'start() options';

export interface StartOptions {
  /** What relative paths in the configuration resolve against (default: the current directory). */
  readonly dir?: string;
  /** Handle SIGHUP (reload), SIGTERM/SIGINT (graceful stop), SIGQUIT (fast stop) as `handover start` does (default: false). */
  readonly signals?: boolean;
  /** The master's logger (default: JSON lines on stdout; readable lines on a terminal). */
  readonly logger?: Logger;
}

/** A running master. */
export interface Handover {
  /** The master's pid: this process. */
  readonly pid: number;
  /** Resolves once the master has stopped (by stop(), or a signal when `signals` is on). */
  readonly stopped: Promise<void>;
  /** Generations, workers, the last reloads: what `handover status --json` prints. */
  status(): MasterStatus;
  /**
   * A new generation, with `config` when given (validated first: a ConfigError
   * rejects before anything changes), else with the current configuration.
   * Resolves with the report once the old listeners are shut down, or after
   * the drain with `waitDrain`. A rollback resolves too: see `result`.
   */
  reload(config?: ConfigOptions, options?: { readonly waitDrain?: boolean }): Promise<ReloadReport>;
  /** Graceful (drain, bounded by reload.drain_timeout) unless `fast`; resolves once stopped. */
  stop(options?: { readonly fast?: boolean }): Promise<void>;
}

/** The object's own file: JSON, validated, every path absolute, no watching (there is no file of the user's to watch). */
async function prepare(config: ConfigOptions, dir: string, file: string): Promise<{ config: Config; text: string }> {
  if (config.reload?.watch === true) {
    throw new ConfigError([{ file: ORIGIN, path: 'reload.watch', message: 'there is no file to watch when the configuration is an object; call reload()' }]);
  }
  const { parseConfigObject, withAbsolutePaths } = await import('./config/index.js');
  const input = withAbsolutePaths({ ...config, reload: { ...config.reload, watch: false } }, dir);
  return { config: parseConfigObject(input, file, ORIGIN), text: `${JSON.stringify(input, null, 2)}\n` };
}

/** Replaces the file in one step, so the master never reads half of it. */
function replaceFile(file: string, text: string): void {
  const next = `${file}.next`;
  writeFileSync(next, text, { mode: 0o600 });
  renameSync(next, file);
}

/**
 * Starts a master serving `config` (the same keys as the configuration
 * file) and resolves once every worker is ready. Rejects with a ConfigError
 * for an invalid configuration, or with the reason the master could not
 * start (a port in use, an app that throws at load...).
 */
export async function start(config: ConfigOptions, options: StartOptions = {}): Promise<Handover> {
  const home = mkdtempSync(join(tmpdir(), 'handover-')); // mode 0700
  const file = join(home, 'config.json');
  const cleanup = (): void => rmSync(home, { recursive: true, force: true });
  process.once('exit', cleanup);
  try {
    const prepared = await prepare(config, options.dir ?? process.cwd(), file);
    replaceFile(file, prepared.text);
    const [{ Supervisor }, { forwardSignals }, { createLogger }, { workerOutputClosed }] = await Promise.all([
      import('./master/supervisor.js'),
      import('./master/run.js'),
      import('./log/logger.js'),
      import('./master/worker-output.js'),
    ]);
    const log = options.logger ?? createLogger({ level: prepared.config.log.level, format: prepared.config.log.format, name: 'master' });
    const supervisor = new Supervisor(prepared.config, log);
    const unforward = options.signals ? forwardSignals(supervisor) : () => {};
    const stopped = supervisor.done.then(async () => {
      unforward();
      process.off('exit', cleanup);
      cleanup();
      await workerOutputClosed(); // the workers' last lines
    });
    try {
      await supervisor.start();
    } catch (err) {
      unforward();
      throw err;
    }
    return {
      pid: process.pid,
      stopped,
      status: () => supervisor.status(),
      reload: async (next, how = {}) => {
        if (next !== undefined) replaceFile(file, (await prepare(next, options.dir ?? process.cwd(), file)).text);
        return new Promise<ReloadReport>((resolve) =>
          supervisor.dispatch({ type: 'reload', trigger: 'control', onReport: resolve, waitDrain: how.waitDrain === true }),
        );
      },
      stop: async (how = {}) => {
        supervisor.dispatch({ type: 'control', request: { cmd: 'stop', fast: how.fast === true }, reply: () => {} });
        await stopped;
      },
    };
  } catch (err) {
    process.off('exit', cleanup);
    cleanup();
    throw err;
  }
}
