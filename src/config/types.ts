// The validated, frozen shape of a configuration. Everything here is plain
// data: durations are milliseconds, paths are absolute, addresses parsed.

export type Strategy = 'auto' | 'bpf' | 'migrate' | 'drain' | 'inherit' | 'none';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export type LogFormatSetting = 'auto' | 'json' | 'pretty' | 'journal';

/** A parsed `host:port` or `[v6]:port`. `text` is the canonical form used in logs and metrics labels. */
export interface SocketAddress {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly text: string;
}

/** A certificate chain and its private key (absolute paths). */
export interface TlsPairFiles {
  readonly cert: string;
  readonly key: string;
  /** Of an encrypted key. Never logged: the master decrypts the key, workers get the plain key. */
  readonly passphrase?: string;
}

/** The certificate for one server name (lower case; `*.example.org` matches one label). */
export interface SniFiles extends TlsPairFiles {
  readonly name: string;
}

/** A TLS address: the default pair, pairs per SNI name, and the CA that client certificates must chain to. */
export interface TlsFiles extends TlsPairFiles {
  readonly ca?: string;
  readonly sni: readonly SniFiles[];
}

export interface ListenConfig {
  readonly address: SocketAddress;
  readonly backlog: number;
  readonly v6only: boolean;
  readonly tls?: TlsFiles;
  /** ALPN offers h2 and http/1.1 (TLS addresses only). */
  readonly http2: boolean;
}

export type TlsRotate = 'new-generation' | 'in-place';

export interface TlsConfig {
  readonly rotate: TlsRotate;
  readonly warnBeforeMs: number;
  /** How long the watch waits for changed TLS files to form a valid set before it gives up. */
  readonly pairWaitMs: number;
}

export interface ReloadConfig {
  readonly strategy: Strategy;
  readonly setTcpMigrateReq: boolean;
  readonly readyTimeoutMs: number;
  readonly settleMs: number;
  readonly drainTimeoutMs: number;
  readonly watch: boolean;
}

export interface RestartConfig {
  readonly minUptimeMs: number;
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
}

export interface Config {
  /** Absolute path of the file this was read from. */
  readonly file: string;
  /** Absolute path of the app module (resolved relative to the config file). */
  readonly app: string;
  /** Resolved worker count (`auto` already turned into a number). */
  readonly workers: number;
  readonly listen: readonly ListenConfig[];
  readonly reload: ReloadConfig;
  readonly restart: RestartConfig;
  readonly tls: TlsConfig;
  readonly stopDelayMs: number;
  readonly metrics?: { readonly listen: SocketAddress };
  /** Control socket path: explicit, or the deterministic per-service default. */
  readonly controlSocket: string;
  readonly user?: string;
  readonly group?: string;
  readonly log: { readonly level: LogLevel; readonly format: LogFormatSetting };
  readonly env: Readonly<Record<string, string>>;
  /** Options for the workers' node, before the worker entry (execArgv). */
  readonly nodeArgs: readonly string[];
  /** The workers' working directory (absolute); unset: the master's. */
  readonly cwd?: string;
  /**
   * What is allowed but probably a mistake (e.g. far more workers than
   * CPUs), as `file:line:col: key: message` lines. The master logs them at
   * start and puts them in a reload's report; `check` prints them.
   */
  readonly warnings: readonly string[];
}
