// net/: listener specs, the master's listening sockets, and who else listens.

export { listenerSpec, sameSpec, specKey } from './spec.js';
export type { ListenerSpec } from './spec.js';
export { Listener, openListener, openListeners, queuedOn, quietly } from './listener.js';
export type { GroupMembership } from './listener.js';
export { findForeignListeners } from './foreign.js';
export type { ForeignListener } from './foreign.js';
export { joinOrder, readListeningTable, readTcpTable, TCP_LISTEN, TCP_SYN_RECV } from './tcp-table.js';
export { countSynRecv, HALF_OPEN_POLL_MS, HalfOpenSnapshot } from './half-open.js';
export type { HalfOpenWait } from './half-open.js';
export type { TcpTableEntry } from './tcp-table.js';
export { addressText, isSyscallError, socketAddress, SyscallError } from '../sys/index.js';
export type { AcceptQueue } from '../sys/index.js';
export { ReuseportGroup } from './reuseport-group.js';
export type { GroupChange, GroupSteering } from './reuseport-group.js';
export { ReuseportLayout } from './reuseport-layout.js';
export { ControlLock, peerOf } from './local.js';
export type { PeerCredentials } from './local.js';
