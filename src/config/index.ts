// The configuration module's public face. Everything else in src/ imports
// from here, so the files behind it can be rearranged freely.

export type {
  Config,
  ListenConfig,
  LogFormatSetting,
  LogLevel,
  ReloadConfig,
  RestartConfig,
  SniFiles,
  SocketAddress,
  Strategy,
  TlsConfig,
  TlsFiles,
  TlsPairFiles,
  TlsRotate,
} from './types.js';
export { ConfigError, formatProblem, loadConfig, ResourceShortage, parseConfig, parseConfigObject, withAbsolutePaths, type ConfigProblem } from './load.js';
export type { Address, ConfigOptions, Duration, ListenOptions, LogLevelName, StrategyName } from './options.js';
export { CONFIG_PARSE_TIMEOUT_MS, INLINE_PARSE_MAX_BYTES, loadConfigAsync, type AsyncLoadOptions } from './load-async.js';
export { MAX_CONFIG_BYTES, MAX_ENV, MAX_ENV_ENTRY_BYTES, MAX_LISTEN, MAX_NESTING, MAX_WORKERS, WORKERS_PER_CPU_WARNING } from './limits.js';
export { configJsonSchema, configSchema, type ConfigInput } from './schema.js';
export {
  controlDir,
  controlDirProblem,
  defaultControlSocket,
  ensureControlDir,
  MAX_SOCKET_PATH_BYTES,
  socketPathProblem,
} from './control-path.js';
export { parseAddress, parseDuration, type Parsed } from './notation.js';
export { autoWorkers, cgroupCpuLimit } from './cpu-quota.js';
