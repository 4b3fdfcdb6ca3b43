#!/usr/bin/env node
// CLI entry: parses argv and dispatches to the master (start) or the
// control-socket commands. User errors print one line, never a stack.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, defaultControlSocket, loadConfigAsync, type Config } from './config/index.js';
import { check, DEFAULT_DEADLINES, reload, status, stop } from './cli/commands.js';
import { DEFAULT_CONFIG, UsageError, commandHelp, mainHelp, parseCommand, type Parsed } from './cli/usage.js';
import { runMaster } from './master/run.js';

const EMBEDDED_CONFIG = fileURLToPath(new URL('../config/handover.yaml', import.meta.url));

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function configFile(parsed: Parsed): string {
  if (parsed.config !== undefined) return parsed.config;
  // Without -c: the project's own config/handover.yaml, else the embedded default.
  return existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : EMBEDDED_CONFIG;
}

async function run(argv: readonly string[]): Promise<number> {
  const parsed = parseCommand(argv);
  if (parsed === 'help') {
    process.stdout.write(mainHelp());
    return 0;
  }
  if (parsed === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    out(pkg.version);
    return 0;
  }
  if (parsed.help) {
    process.stdout.write(commandHelp(parsed.command));
    return 0;
  }
  const file = configFile(parsed);
  if (parsed.command === 'reload') {
    // An invalid file is the master's to refuse: it logs and counts it, and
    // keeps serving; we only need its control socket.
    try {
      return await reload(await loadConfigAsync(file), parsed.flags['json'] === true, parsed.flags['wait-drain'] === true, out);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const socket = err.controlSocket ?? defaultControlSocket(file);
      try {
        return await reload({ controlSocket: socket, reload: DEFAULT_DEADLINES }, parsed.flags['json'] === true, false, out);
      } catch {
        throw err; // no master reached (e.g. a syntax error hid control.socket): the config error is the news
      }
    }
  }
  // Large files parse in a thread with a heap limit: a hostile file cannot balloon this process.
  const config: Config = await loadConfigAsync(file);
  switch (parsed.command) {
    case 'start':
      return runMaster(config);
    case 'stop':
      return stop(config, parsed.flags['fast'] === true, out);
    case 'status':
      return status(config, parsed.flags['json'] === true, out);
    case 'check':
      return check(config, parsed.flags['kernel'] === true, out);
  }
}

function exitCodeOf(err: unknown): number {
  return err instanceof UsageError || err instanceof ConfigError ? 2 : 1;
}

// Exit explicitly: the master may leave handles (timers, a half-closed
// control connection) that must not keep a stopped process alive.
run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`handover: ${message}\n`);
    if (process.env['HANDOVER_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(exitCodeOf(err));
  },
);
