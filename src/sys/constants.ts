// Linux ABI constants used by handover. Values are the same on x86-64 and
// arm64 (the generic socket ABI); they are not exported by Node's `os`.

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_REUSEPORT = 15;
export const SO_ACCEPTCONN = 30;
export const SO_ATTACH_REUSEPORT_CBPF = 51;
export const SO_ATTACH_REUSEPORT_EBPF = 52;
export const SO_DETACH_REUSEPORT_BPF = 68;
export const SO_COOKIE = 57;

export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const TCP_INFO = 11;

/** Offsets in `struct tcp_info` that a LISTEN socket repurposes. */
export const TCPI_UNACKED_OFFSET = 24; // current accept-queue length
export const TCPI_SACKED_OFFSET = 28; // backlog (sk_max_ack_backlog)
export const TCP_INFO_SIZE = 256;

export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

export const F_GETFD = 1;
export const F_DUPFD_CLOEXEC = 1030;
export const FD_CLOEXEC = 1;

export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;

export const PR_SET_PDEATHSIG = 1;
export const PR_GET_PDEATHSIG = 2;
export const PR_GET_SECUREBITS = 27;
export const PR_SET_SECUREBITS = 28;
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_GET_NO_NEW_PRIVS = 39;
export const PR_CAP_AMBIENT = 47;
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;

/** securebits: uid 0 gains no capabilities at execve (and the bit cannot be unset again). */
export const SECBIT_NOROOT = 1 << 0;
export const SECBIT_NOROOT_LOCKED = 1 << 1;

/** capget/capset header version: two 32-bit words per set (capabilities 0-63). */
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

export const CLOCK_MONOTONIC = 1;

/** struct sockaddr_un: sa_family (2 bytes), then sun_path[108]. */
export const SUN_PATH_OFFSET = 2;
export const SUN_PATH_SIZE = 108;

export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;
