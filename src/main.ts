#!/usr/bin/env node
// CLI entry: parses argv and dispatches to the master (start) or a command.
// Each command imports only what it needs, so that `status` costs little
// more than starting node does (bench/cli-cost.ts). User errors print one
// line, never a stack.
import { readFileSync } from 'node:fs';
import module from 'node:module';
import { chooseConfig, describeChoice } from './cli/discover.js';
import { commandHelp, mainHelp, parseCommand, type Parsed } from './cli/usage.js';

// Node 22.1+ keeps V8's compiled code for the modules loaded from here on
// (every command's, the master's) on disk and reuses it at the next start
// (os.tmpdir()/node-compile-cache, or NODE_COMPILE_CACHE; off with
// NODE_DISABLE_COMPILE_CACHE=1). Node 20 has no such cache. A cache that
// cannot be written (another user's directory) is skipped by Node, silently.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Without a master there is nothing to show; but a broken file is the more useful news. */
async function orConfigProblem(file: string, err: unknown): Promise<never> {
  if (err instanceof Error && err.name === 'NotRunningError') {
    const { loadConfig } = await import('./config/index.js');
    loadConfig(file); // throws ConfigError when the file is the problem
  }
  throw err;
}

async function controlCommand(parsed: Parsed, file: string): Promise<number> {
  const [{ locateMaster, DEFAULT_DEADLINES }, commands] = await Promise.all([import('./cli/target.js'), import('./cli/commands.js')]);
  const json = parsed.flags['json'] === true;
  if (parsed.command === 'reload') {
    const waitDrain = parsed.flags['wait-drain'] === true;
    let target;
    try {
      target = await locateMaster(file, true);
    } catch (err) {
      // An invalid file is the master's to refuse: it logs and counts the
      // refusal, and keeps serving. All we need is its control socket.
      const socket = (err as { controlSocket?: unknown }).controlSocket;
      if (typeof socket !== 'string') throw err;
      try {
        return await commands.reload({ socket, deadlines: DEFAULT_DEADLINES }, json, waitDrain, out);
      } catch {
        throw err; // no master reached: the configuration problem is the news
      }
    }
    return commands.reload(target, json, waitDrain, out).catch((err: unknown) => orConfigProblem(file, err));
  }
  const target = await locateMaster(file, false);
  const run = parsed.command === 'stop' ? commands.stop(target, parsed.flags['fast'] === true, out) : commands.status(target, json, out);
  return run.catch((err: unknown) => orConfigProblem(file, err));
}

async function run(argv: readonly string[]): Promise<number> {
  const parsed = parseCommand(argv);
  if (parsed === 'bare') {
    process.stderr.write(mainHelp());
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(mainHelp());
    return 0;
  }
  if (parsed === 'version') {
    out(version());
    return 0;
  }
  if (parsed.help) {
    process.stdout.write(commandHelp(parsed.command));
    return 0;
  }
  if (parsed.command === 'init') {
    const { init } = await import('./cli/init.js');
    return init(parsed.config, parsed.positionals[0], out, note);
  }
  const choice = chooseConfig(parsed.config);
  const said = describeChoice(choice);
  if (said) note(said);
  switch (parsed.command) {
    case 'start': {
      // Large files parse in a thread with a heap limit: a hostile file cannot balloon this process.
      const [{ loadConfigAsync }, { runMaster }] = await Promise.all([import('./config/index.js'), import('./master/run.js')]);
      return runMaster(await loadConfigAsync(choice.file));
    }
    case 'check': {
      const { check } = await import('./cli/check.js');
      return check(choice.file, parsed.flags['kernel'] === true, parsed.flags['json'] === true, out);
    }
    case 'status':
    case 'stop':
    case 'reload':
      return controlCommand(parsed, choice.file);
  }
}

/** 2: the user's input (arguments, configuration); 1: anything at run time. */
const USER_ERRORS = new Set(['UsageError', 'ConfigError']);

// Exit explicitly: the master may leave handles (timers, a half-closed
// control connection) that must not keep a stopped process alive.
run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`handover: ${message}\n`);
    if (process.env['HANDOVER_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(err instanceof Error && USER_ERRORS.has(err.name) ? 2 : 1);
  },
);
