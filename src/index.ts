// The package's library entry: `import { start, type App } from 'handover'`.
// Importing it starts nothing and prints nothing; start() loads the master
// when called. The CLI is dist/main.js (the `handover` bin), not this.

export { start, type Handover, type StartOptions } from './api.js';
export { ConfigError, type ConfigProblem } from './config/problems.js';
export type {
  Address,
  ConfigOptions as Config,
  Duration,
  ListenOptions,
  LogLevelName,
  StrategyName,
} from './config/options.js';
export type { AppContext, AppExport as App, Hooks, RequestListener } from './worker/app.js';
export type {
  DrainFigures,
  EffectiveStrategy,
  GenerationStatus,
  ListenerAction,
  ListenerPlan,
  MasterStatus,
  ReloadReport,
  ReloadResult,
  Trigger,
  WorkerStatus,
} from './protocol/control.js';
