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
export { ConfigError, formatProblem, loadConfig, parseConfig, parseConfigObject, withAbsolutePaths, type ConfigProblem } from './load.js';
export type { Address, ConfigOptions, Duration, ListenOptions, LogLevelName, StrategyName } from './options.js';
export { configJsonSchema, configSchema, type ConfigInput } from './schema.js';
export {
  controlDir,
  defaultControlSocket,
  ensureControlDir,
  MAX_SOCKET_PATH_BYTES,
  socketPathProblem,
} from './control-path.js';
export { parseAddress, parseDuration, type Parsed } from './notation.js';
export { autoWorkers, cgroupCpuLimit } from './cpu-quota.js';
