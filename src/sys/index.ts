// sys/: the only module that calls ffi-rs. Raw descriptors, errno, constants.

export * as constants from './constants.js';
export { SyscallError, errnoName, errnoNumber, isSyscallError } from './errno.js';
export { libcName } from './libc.js';
export {
  bind, close, dupCloexec, getsockname, getsockoptBuffer, getsockoptInt, isCloexec, isListening,
  listen, setsockoptInt, shutdown, socket, socketCookie, tcpInfoQueue,
} from './socket.js';
export type { AcceptQueue } from './socket.js';
export { addressText, encodeSockaddr, formatIPv4, formatIPv6, socketAddress } from './sockaddr.js';
export { getppid, prctlGetPdeathsig, prctlSetPdeathsig, setpgid } from './process.js';
export { peerCredentials, tryLockExclusive, unixSocketPath } from './unix.js';
export type { PeerCredentials } from './unix.js';
