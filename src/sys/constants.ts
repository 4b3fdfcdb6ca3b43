// Linux ABI constants used by handover. Values are the same on x86-64 and
// arm64 (the generic socket ABI); they are not exported by Node's `os`.

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const SOCK_STREAM = 1;
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
export const SO_PEERCRED = 17;
/** struct ucred: pid, uid, gid, each 32 bits. */
export const UCRED_SIZE = 12;
/** struct sockaddr_un: sun_family (2 bytes) then sun_path[108]. */
export const SOCKADDR_UN_SIZE = 110;

export const LOCK_EX = 2;
export const LOCK_NB = 4;

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

export const PR_SET_PDEATHSIG = 1;
export const PR_GET_PDEATHSIG = 2;

export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;
