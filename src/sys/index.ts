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
export { clockTicksPerSecond, getppid, pageSize, prctlGetPdeathsig, prctlSetPdeathsig, reapChild, setpgid } from './process.js';
export { bindUnix, encodeSockaddrUn, receiveDatagram, sendDatagram, unixDatagramSocket } from './unix.js';
export { monotonicMicros } from './clock.js';
export { tcpSocketsInStates } from './sock-diag.js';
export type { DiagSocket } from './sock-diag.js';
export {
  CAPABILITIES, capabilityBit, capabilityMask, capabilityNames, clearAmbientCapabilities, getCapabilities,
  getNoNewPrivs, getSecurebits, setCapabilities, setNoNewPrivs, setSecurebits,
} from './capabilities.js';
export type { Capability, CapabilitySets } from './capabilities.js';
export { parseCredentials, readCredentials } from './proc-status.js';
export type { Credentials } from './proc-status.js';
export {
  attachReuseportCbpf, attachReuseportEbpf, BPF_CAPABILITY, bpfSyscallNumber, createMap, detachReuseportBpf,
  loadProgram, mapDelete, mapLookup, mapUpdate, VerifierError,
} from './bpf.js';
export type { MapSpec, ProgramSpec } from './bpf.js';
export { NotSupportedError, isNotSupported } from './not-supported.js';
export type { Requirement } from './not-supported.js';
export { atLeast, effectiveCapabilities, kernelVersion, parseCapabilities, parseKernelRelease } from './kernel.js';
export type { Capabilities, KernelVersion } from './kernel.js';
export { peerCredentials, tryLockExclusive, unixSocketPath } from './peer.js';
export type { PeerCredentials } from './peer.js';
