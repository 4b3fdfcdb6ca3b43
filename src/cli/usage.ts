// Help texts and argument parsing for every command (node:util parseArgs).
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

export const COMMANDS = {
  start: {
    summary: 'run the master in the foreground',
    usage: 'handover start [-c FILE]',
    details: `Starts the master, which opens the SO_REUSEPORT listeners and spawns the workers.
Signals: SIGHUP reload, SIGTERM/SIGINT graceful stop (drain, then exit 0),
SIGQUIT fast stop. Note: nginx uses QUIT for graceful and TERM for fast;
handover follows what systemd and Kubernetes send (TERM = graceful).`,
    options: {},
  },
  reload: {
    summary: 'start a new generation of workers and hand the connections over',
    usage: 'handover reload [-c FILE] [--json] [--wait-drain]',
    details: `Re-reads the configuration, starts a complete new generation, and shuts the
old listeners down once every new worker is ready; their queued connections
move to the new generation (strategy migrate/inherit). Prints the reload
report as soon as the cutover is done; --wait-drain waits for the old
workers to finish too. Same as SIGHUP to the master.
Exit codes: 0 reloaded, 1 rolled back (the old generation keeps serving),
2 invalid configuration (nothing changed).`,
    options: { json: { type: 'boolean' }, 'wait-drain': { type: 'boolean' } },
  },
  stop: {
    summary: 'stop the running master (graceful unless --fast) and wait for it to exit',
    usage: 'handover stop [-c FILE] [--fast]',
    details: 'Graceful: workers stop accepting, finish in-flight requests, then exit (bounded by reload.drain_timeout).',
    options: { fast: { type: 'boolean' } },
  },
  status: {
    summary: 'show the generation and each worker of the running master',
    usage: 'handover status [-c FILE] [--json]',
    details: 'Exits 1 when no master runs for this configuration.',
    options: { json: { type: 'boolean' } },
  },
  check: {
    summary: 'validate the configuration (and with --kernel, what the kernel allows)',
    usage: 'handover check [-c FILE] [--kernel]',
    details: 'Exits 0 when the configuration is valid, 2 with every problem (file:line: key: message) otherwise.',
    options: { kernel: { type: 'boolean' } },
  },
} as const satisfies Record<string, { summary: string; usage: string; details: string; options: ParseArgsConfig['options'] }>;

export type CommandName = keyof typeof COMMANDS;

export const DEFAULT_CONFIG = 'config/handover.yaml';

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `handover: zero-downtime supervisor for Node.js web services

Usage: handover <command> [options]

Commands:
${lines.join('\n')}

Options for every command:
  -c, --config FILE  configuration file (default: ${DEFAULT_CONFIG})
  -h, --help         show help for the command

Exit codes: 0 ok, 1 runtime failure, 2 usage error or invalid configuration.
`;
}

export function commandHelp(name: CommandName): string {
  const c = COMMANDS[name];
  const opts = Object.keys(c.options).map((o) => `  --${o}`);
  return `Usage: ${c.usage}

${c.summary}

${c.details}

Options:
  -c, --config FILE  configuration file (default: ${DEFAULT_CONFIG})
${opts.join('\n')}${opts.length ? '\n' : ''}  -h, --help         show this help
`;
}

export interface Parsed {
  readonly command: CommandName;
  readonly config: string | undefined;
  readonly help: boolean;
  readonly flags: Readonly<Record<string, boolean>>;
}

export function parseCommand(argv: readonly string[]): Parsed | 'help' | 'version' {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') return 'help';
  if (command === '-v' || command === '--version' || command === 'version') return 'version';
  if (!(command in COMMANDS)) throw new UsageError(`unknown command "${command}" (try: handover --help)`);
  const name = command as CommandName;
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        ...COMMANDS[name].options,
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length > 0) throw new UsageError(`${name}: unexpected argument "${positionals[0]}"`);
    const flags: Record<string, boolean> = {};
    for (const [k, v] of Object.entries(values)) if (typeof v === 'boolean') flags[k] = v;
    return { command: name, config: values.config, help: values.help === true, flags };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${name}: ${(err as Error).message} (try: handover ${name} --help)`);
  }
}
