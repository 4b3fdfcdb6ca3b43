// net/: listener specs, the master's listening sockets, and who else listens.

export { listenerSpec, sameSpec, specKey } from './spec.js';
export type { ListenerSpec } from './spec.js';
export { Listener, openListener, openListeners, queuedOn } from './listener.js';
export { findForeignListeners } from './foreign.js';
export type { ForeignListener } from './foreign.js';
export { readTcpTable, TCP_LISTEN } from './tcp-table.js';
export type { TcpTableEntry } from './tcp-table.js';
export { addressText, isSyscallError, socketAddress, SyscallError } from '../sys/index.js';
export type { AcceptQueue } from '../sys/index.js';
export { chooseStrategy, SYSCTL_HINT } from './strategy.js';
export type { EffectiveStrategy, StrategyChoice } from './strategy.js';
export { ControlLock, peerOf } from './local.js';
export type { PeerCredentials } from './local.js';
