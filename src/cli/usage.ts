// Help texts and argument parsing for every command (node:util parseArgs).
// Loaded by every invocation, so it imports nothing but node:util.
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

interface Flag {
  readonly type: 'boolean' | 'string';
  readonly short?: string;
  readonly value?: string;
  readonly help: string;
}

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly details: string;
  readonly flags: Readonly<Record<string, Flag>>;
  /** How many positional arguments it takes (default none). */
  readonly positionals?: number;
  readonly examples: readonly string[];
}

const CONFIG_FLAG: Flag = { type: 'string', short: 'c', value: 'FILE', help: 'configuration file (default: see "Configuration file" below)' };
const JSON_FLAG: Flag = { type: 'boolean', help: 'print JSON on stdout (nothing else there), for scripts' };

export const COMMANDS = {
  start: {
    summary: 'run the master in the foreground',
    usage: 'handover start [-c FILE]',
    details: `Starts the master, which opens the SO_REUSEPORT listeners and spawns the workers.
Signals: SIGHUP reload, SIGTERM/SIGINT graceful stop (drain, then exit 0),
SIGQUIT fast stop. Note: nginx uses QUIT for graceful and TERM for fast;
handover follows what systemd and Kubernetes send (TERM = graceful).`,
    flags: { config: CONFIG_FLAG },
    examples: ['handover start', 'handover start -c /etc/handover/web.yaml'],
  },
  reload: {
    summary: 'start a new generation of workers and hand the connections over',
    usage: 'handover reload [-c FILE] [--json] [--wait-drain]',
    details: `Re-reads the configuration, starts a complete new generation, and shuts the
old listeners down once every new worker is ready; their queued connections
move to the new generation. Prints the reload report as soon as the cutover
is done. Same as SIGHUP to the master.
Exit codes: 0 reloaded, 1 rolled back (the old generation keeps serving),
2 invalid configuration (nothing changed).`,
    flags: {
      config: CONFIG_FLAG,
      json: { type: 'boolean', help: 'print the reload report as JSON' },
      'wait-drain': { type: 'boolean', help: 'also wait for the old workers to finish, and report the drain (at most reload.drain_timeout)' },
    },
    examples: ['handover reload', 'handover reload --wait-drain', "handover reload --json | jq .migrated"],
  },
  stop: {
    summary: 'stop the running master (graceful unless --fast) and wait for it to exit',
    usage: 'handover stop [-c FILE] [--fast]',
    details: 'Graceful: workers stop accepting, finish in-flight requests, then exit (bounded by reload.drain_timeout).',
    flags: {
      config: CONFIG_FLAG,
      fast: { type: 'boolean', help: 'shut the listeners and terminate the workers at once (what is in flight is cut)' },
    },
    examples: ['handover stop', 'handover stop --fast'],
  },
  status: {
    summary: 'show the generations, each worker and the last reloads of the running master',
    usage: 'handover status [-c FILE] [--json]',
    details: 'Exits 1 when no master runs for this configuration.',
    flags: { config: CONFIG_FLAG, json: { ...JSON_FLAG, help: 'print the master\'s status as JSON' } },
    examples: ['handover status', "handover status --json | jq '.generations[0].workers'"],
  },
  check: {
    summary: 'validate the configuration (and with --kernel, what the kernel allows)',
    usage: 'handover check [-c FILE] [--kernel] [--json]',
    details: 'Exits 0 when the configuration is valid, 2 with every problem (file:line:col: key: message) otherwise.',
    flags: {
      config: CONFIG_FLAG,
      kernel: { type: 'boolean', help: 'also show the kernel, net.ipv4.tcp_migrate_req and the strategy a reload would use' },
      json: { ...JSON_FLAG, help: 'print the result (or the problems) as JSON' },
    },
    examples: ['handover check', 'handover check -c staging.yaml --kernel', 'handover check --json'],
  },
  init: {
    summary: 'write a commented starter configuration for an app',
    usage: 'handover init [APP] [-c FILE]',
    details: `Writes FILE (default ./handover.yaml) serving APP (default: package.json's
"main") on 127.0.0.1:8080. Never overwrites an existing file.`,
    flags: { config: { type: 'string', short: 'c', value: 'FILE', help: 'the file to write (default: ./handover.yaml)' } },
    positionals: 1,
    examples: ['handover init dist/server.js', 'handover init -c config/handover.yaml build/app.js'],
  },
} as const satisfies Record<string, Command>;

export type CommandName = keyof typeof COMMANDS;

export const DISCOVERY_HELP = `Configuration file, when -c is not given: $HANDOVER_CONFIG, else ./handover.yaml
(or .yml), else ./config/handover.yaml, else the default shipped with handover
(serves its examples/hello). The command says on stderr which one it uses.`;

const HELP_FLAG: Flag = { type: 'boolean', short: 'h', help: 'show help for the command' };

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `handover: zero-downtime supervisor for Node.js web services

Usage: handover <command> [options]

Commands:
${lines.join('\n')}

Options:
  -c, --config FILE  configuration file
  -h, --help         help for a command: handover <command> --help
  -v, --version      print the version

${DISCOVERY_HELP}

Examples:
  handover init dist/server.js && handover start
  handover reload
  handover status

Exit codes: 0 ok, 1 runtime failure, 2 usage error or invalid configuration.
`;
}

export function commandHelp(name: CommandName): string {
  const c: Command = COMMANDS[name];
  const flags = Object.entries({ ...c.flags, help: HELP_FLAG }).map(([long, f]) => {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${long}${f.value ? ` ${f.value}` : ''}`;
    return [left, f.help] as const;
  });
  const width = Math.max(...flags.map(([left]) => left.length));
  return `Usage: ${c.usage}

${c.summary}

${c.details}

Options:
${flags.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`).join('\n')}
${name === 'init' ? '' : `\n${DISCOVERY_HELP}\n`}
Examples:
${c.examples.map((e) => `  ${e}`).join('\n')}
`;
}

export interface Parsed {
  readonly command: CommandName;
  readonly config: string | undefined;
  readonly help: boolean;
  readonly flags: Readonly<Record<string, boolean>>;
  readonly positionals: readonly string[];
}

/** 'bare' is no arguments at all: help, but as a usage error (exit 2). */
export function parseCommand(argv: readonly string[]): Parsed | 'help' | 'bare' | 'version' {
  const [command, ...rest] = argv;
  if (command === undefined) return 'bare';
  if (command === '-h' || command === '--help' || command === 'help') return 'help';
  if (command === '-v' || command === '--version' || command === 'version') return 'version';
  if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`unknown command "${command}" (try: handover --help)`);
  const name = command as CommandName;
  const spec: Command = COMMANDS[name];
  try {
    const options = Object.fromEntries(
      Object.entries({ ...spec.flags, help: HELP_FLAG }).map(([long, f]) => [long, f.short ? { type: f.type, short: f.short } : { type: f.type }]),
    );
    const { values, positionals } = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true });
    if (positionals.length > (spec.positionals ?? 0)) {
      throw new UsageError(`${name}: unexpected argument "${positionals[spec.positionals ?? 0]}" (try: handover ${name} --help)`);
    }
    const flags: Record<string, boolean> = {};
    for (const [k, v] of Object.entries(values)) if (typeof v === 'boolean') flags[k] = v;
    const config = values['config'];
    return { command: name, config: typeof config === 'string' ? config : undefined, help: flags['help'] === true, flags, positionals };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${name}: ${(err as Error).message} (try: handover ${name} --help)`);
  }
}
