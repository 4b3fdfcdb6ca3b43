// The configuration as a user writes it, in the file or as the object given
// to `start()`: snake_case keys, durations in their notation, addresses as
// text. Written out by hand (instead of zod's inferred input type) so that
// the package's declarations read like documentation and depend on no
// schema library; test/api/config-type.ts proves it matches the schema.

import type { LogFormatSetting as LogFormatName, LogLevel as LogLevelName, Strategy as StrategyName } from './types.js';

/** `"500ms"`, `"10s"`, `"2m"`, `"1h"`, `"14d"`, `"1m30s"`, or a number of seconds. */
export type Duration = string | number;

/** `host:port` with a literal IP (or `localhost`); IPv6 in brackets: `"[::]:443"`. Port 0 picks a free port. */
export type Address = string;

export type { LogFormatSetting as LogFormatName, LogLevel as LogLevelName, Strategy as StrategyName } from './types.js';

/** A certificate chain (PEM, leaf first) and its key; read by the master only. */
export interface TlsPairOptions {
  readonly cert: string;
  readonly key: string;
  /** Of an encrypted key: the master decrypts it, workers never see it. */
  readonly passphrase?: string | undefined;
}

export interface TlsOptions extends TlsPairOptions {
  /** Clients must present a certificate this CA issued. */
  readonly ca?: string | undefined;
  /** Certificates per server name (SNI); the top-level pair serves every other name. */
  readonly sni?: Readonly<Record<string, TlsPairOptions>> | undefined;
}

export interface ListenOptions {
  readonly address: Address;
  /** Accept queue length (default 511); the kernel caps it at net.core.somaxconn. */
  readonly backlog?: number | undefined;
  /** IPv6 only: do not also accept IPv4-mapped connections (default false). */
  readonly v6only?: boolean | undefined;
  /** Serve HTTPS on this address. */
  readonly tls?: TlsOptions | undefined;
  /** Offer HTTP/2 by ALPN on this TLS address (default false). */
  readonly http2?: boolean | undefined;
}

export interface ConfigOptions {
  /** The app module (compiled JavaScript). Relative paths resolve against the config file's directory. */
  readonly app: string;
  /** Worker processes (default `auto`: the CPUs available, honouring a cgroup quota). */
  readonly workers?: number | 'auto' | undefined;
  readonly listen: readonly ListenOptions[];
  readonly reload?: {
    /** Default `auto`: the best the kernel and the master's privileges allow. */
    readonly strategy?: StrategyName | undefined;
    /** Let the master set the namespace-wide net.ipv4.tcp_migrate_req=1 (default false). */
    readonly set_tcp_migrate_req?: boolean | undefined;
    /** New workers must report ready within this, or the reload rolls back. */
    readonly ready_timeout?: Duration | undefined;
    /** Both generations serve this long after ready; a new worker's death rolls back. */
    readonly settle?: Duration | undefined;
    /** Old workers still busy after this are killed. */
    readonly drain_timeout?: Duration | undefined;
    /** Reload when the configuration file changes (default true; a file only). */
    readonly watch?: boolean | undefined;
  } | undefined;
  readonly restart?: {
    readonly min_uptime?: Duration | undefined;
    readonly backoff?: Duration | undefined;
    readonly backoff_max?: Duration | undefined;
  } | undefined;
  readonly tls?: {
    /** A certificate change starts a new generation (default), or `in-place` swaps the workers' secure context. */
    readonly rotate?: 'new-generation' | 'in-place' | undefined;
    /** Warn when a certificate expires within this (default 14d). */
    readonly warn_before?: Duration | undefined;
    /** How long changed TLS files may take to form a valid set. */
    readonly pair_wait?: Duration | undefined;
  } | undefined;
  /** Keep serving this long after SIGTERM, so a load balancer can take the host out first. */
  readonly stop_delay?: Duration | undefined;
  /** Prometheus endpoint; off when absent. */
  readonly metrics?: { readonly listen: Address } | undefined;
  /** The control socket `handover status/reload/stop` talk to (default: derived from the file's path). */
  readonly control?: { readonly socket: string } | undefined;
  /** Run the workers as this user / group (the master must be root). */
  readonly user?: string | number | undefined;
  readonly group?: string | number | undefined;
  readonly log?: { readonly level?: LogLevelName | undefined; readonly format?: LogFormatName | undefined } | undefined;
  /** Options for the workers' node, e.g. `["--max-old-space-size=512"]`. */
  readonly node_args?: readonly string[] | undefined;
  /** The workers' working directory (default: the master's). */
  readonly cwd?: string | undefined;
  /** Extra environment for the workers. */
  readonly env?: Readonly<Record<string, string | number | boolean>> | undefined;
}
