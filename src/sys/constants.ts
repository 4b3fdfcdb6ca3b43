// Linux ABI constants used by handover. Values are the same on x86-64 and
// arm64 (the generic socket ABI); they are not exported by Node's `os`.

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
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
export const SO_MEMINFO = 55;
/** Index of SK_MEMINFO_DROPS in SO_MEMINFO's u32 array (linux/sock_diag.h); for a listener, its listen drops. */
export const SK_MEMINFO_DROPS = 8;
export const SO_PEERCRED = 17;
/** struct ucred: pid, uid, gid, each 32 bits. */
export const UCRED_SIZE = 12;

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
/** tcpi_state of a socket in LISTEN (TCP_LISTEN in the kernel's tcp_states.h). */
export const TCP_LISTEN_STATE = 10;

export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

export const F_GETFD = 1;
export const F_DUPFD_CLOEXEC = 1030;
export const FD_CLOEXEC = 1;

export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;

/** Socket diagnostics over netlink (linux/netlink.h, linux/sock_diag.h). */
export const NETLINK_SOCK_DIAG = 4;
export const SOCK_DIAG_BY_FAMILY = 20;
export const NLM_F_REQUEST = 0x1;
/** NLM_F_ROOT | NLM_F_MATCH */
export const NLM_F_DUMP = 0x300;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
/** sysconf(3) names (glibc and musl agree). */
export const SC_CLK_TCK = 2;
export const SC_PAGESIZE = 30;

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

// --- bpf(2): commands, types and the layouts handover writes (linux/bpf.h,
// offsets measured on Linux 6.18: FACTS.md "eBPF, from Node, with no compiler").

/** The bpf() system call number, per architecture (asm/unistd.h). */
export const BPF_SYSCALL_NUMBER: Readonly<Partial<Record<NodeJS.Architecture, number>>> = Object.freeze({ x64: 321, arm64: 280 });

export const BPF_MAP_CREATE = 0;
export const BPF_MAP_LOOKUP_ELEM = 1;
export const BPF_MAP_UPDATE_ELEM = 2;
export const BPF_MAP_DELETE_ELEM = 3;
export const BPF_PROG_LOAD = 5;

export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20;
export const BPF_PROG_TYPE_SK_REUSEPORT = 21;
export const BPF_SK_REUSEPORT_SELECT = 39;
export const BPF_SK_REUSEPORT_SELECT_OR_MIGRATE = 40;

/** Map update flags. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** src_reg of a ld_imm64 whose immediate is a map descriptor. */
export const BPF_PSEUDO_MAP_FD = 1;

/** sizeof(union bpf_attr) that handover passes: larger than any command it uses needs, zero-filled. */
export const BPF_ATTR_SIZE = 144;
/** A name in bpf_attr (map_name, prog_name): 15 characters and a NUL. */
export const BPF_OBJ_NAME_LEN = 16;

export const BPF_MAP_CREATE_ATTR = Object.freeze({ mapType: 0, keySize: 4, valueSize: 8, maxEntries: 12, mapFlags: 16, mapName: 28 });
export const BPF_ELEM_ATTR = Object.freeze({ mapFd: 0, key: 8, value: 16, flags: 24 });
export const BPF_PROG_LOAD_ATTR = Object.freeze({
  progType: 0, insnCnt: 4, insns: 8, license: 16, logLevel: 24, logSize: 28, logBuf: 32,
  kernVersion: 40, progFlags: 44, progName: 48, progIfindex: 64, expectedAttachType: 68,
});

/** Return values of an SK_REUSEPORT program. */
export const SK_DROP = 0;
export const SK_PASS = 1;

/** struct sk_reuseport_md (pointer fields are read as 64 bits; a 32-bit read is refused). */
export const SK_REUSEPORT_MD = Object.freeze({
  data: 0, dataEnd: 8, len: 16, ethProtocol: 20, ipProtocol: 24, bindInany: 28, hash: 32, sk: 40, migratingSk: 48,
});

/** eBPF helper function ids (linux/bpf.h, enum bpf_func_id). */
export const BPF_FUNC_map_lookup_elem = 1;
export const BPF_FUNC_sk_select_reuseport = 82;

/** struct sock_fprog on a 64-bit ABI: u16 len, padding, then the filter pointer. */
export const SOCK_FPROG_SIZE = 16;
export const SOCK_FILTER_SIZE = 8;
/** BPF_MAXINSNS: the most instructions a classic BPF program may have. */
export const BPF_MAXINSNS = 4096;
/** Classic BPF ancillary load of a random u32: SKF_AD_OFF + SKF_AD_RANDOM. */
export const SKF_AD_RANDOM_OFFSET = -0x1000 + 56;

/** Capability bit numbers (linux/capability.h). */
export const CAP_NET_ADMIN = 12;
export const CAP_SYS_ADMIN = 21;
export const CAP_PERFMON = 38;
export const CAP_BPF = 39;
