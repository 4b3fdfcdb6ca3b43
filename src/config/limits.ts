// Bounds on what a configuration file may ask for. The master reads this
// file on every reload, often from a path a deploy tool writes, so a typo
// (`workers: 10000`) or a generated file gone wrong must be refused with a
// located error instead of spawning until the host runs out, or stalling the
// master's event loop while it parses.

/**
 * The file itself. A real configuration is a few KiB; at 1 MiB the YAML
 * parser already needs 1-3 s of CPU on a busy core (measured: flow
 * collections are the slowest shape), which is why larger files are parsed
 * off the master's event loop (load-async.ts).
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * Workers. Each is a Node process (~40 MB RSS and ~80 ms of CPU to start);
 * 1024 is far beyond any host's useful parallelism while still refusing a
 * stray extra zero before the master forks until the pids cgroup or the
 * memory runs out.
 */
export const MAX_WORKERS = 1024;

/** More workers than this many per CPU available is allowed, with a warning: they only queue for the CPU. */
export const WORKERS_PER_CPU_WARNING = 4;

/**
 * Listen addresses. Every address costs one SO_REUSEPORT socket per worker
 * in the master and in each worker: 64 addresses with 1024 workers is 65,536
 * descriptors in the master, still within the hard RLIMIT_NOFILE that Node
 * raises its soft limit to (524,288 under systemd).
 */
export const MAX_LISTEN = 64;

/**
 * Environment entries for the workers. Services use tens; a thousand is
 * generous. The environment is copied into every worker at exec, and a
 * map this large is almost always a generator's mistake.
 */
export const MAX_ENV = 1024;

/**
 * One `NAME=value` string: the kernel refuses a single argument or
 * environment string longer than MAX_ARG_STRLEN (32 pages, 131,072 bytes
 * with its NUL) with E2BIG, and every worker spawn would fail.
 */
export const MAX_ENV_ENTRY_BYTES = 128 * 1024 - 1;

/**
 * Nesting depth of the YAML document. The deepest valid configuration has
 * four levels (listen, an entry, tls, cert); the parser itself gives up with
 * a stack overflow somewhere below a thousand.
 */
export const MAX_NESTING = 32;

/** Problems reported for one file; the rest are counted. A person fixes the first ones first. */
export const MAX_PROBLEMS = 50;
