// sys/: the only module that calls ffi-rs. Raw descriptors, errno, constants.

export * as constants from './constants.js';
export { SyscallError, errnoName, errnoNumber, isSyscallError } from './errno.js';
export { libcName } from './libc.js';
export {
  bind, close, dupCloexec, getsockname, getsockoptBuffer, getsockoptInt, isCloexec, isListening,
  listen, listeningQueue, setsockoptInt, shutdown, socket, socketCookie, socketDrops, tcpInfoQueue,
} from './socket.js';
export type { AcceptQueue } from './socket.js';
export { addressText, encodeSockaddr, formatIPv4, formatIPv6, socketAddress } from './sockaddr.js';
export { clockTicksPerSecond, getppid, pageSize, prctlGetPdeathsig, prctlSetPdeathsig, setpgid } from './process.js';
