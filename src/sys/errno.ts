import { constants } from 'node:os';

// errno number → name, from Node's own table (Linux values). Where two names
// share a number, the first in the table wins, except that the socket
// spellings are preferred: EAGAIN over EWOULDBLOCK, EOPNOTSUPP over ENOTSUP.
const NAMES: ReadonlyMap<number, string> = (() => {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(constants.errno)) {
    if (!names.has(value)) names.set(value, name);
  }
  const eopnotsupp = constants.errno.EOPNOTSUPP;
  if (eopnotsupp !== undefined) names.set(eopnotsupp, 'EOPNOTSUPP');
  return names;
})();

/** The symbolic name of a Linux errno, e.g. 98 → 'EADDRINUSE'; unknown numbers → 'ERRNO_<n>'. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `ERRNO_${errno}`;
}

/** The errno number of a symbolic name, e.g. 'EADDRINUSE' → 98. */
export function errnoNumber(code: string): number | undefined {
  return (constants.errno as Record<string, number | undefined>)[code];
}

/**
 * A failed system call: names the call, the errno and what it was applied
 * to, e.g. `bind 127.0.0.1:8080: EADDRINUSE`. `errno` is the positive Linux
 * number (Node's own errors use the negated libuv value).
 */
export class SyscallError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  // `declare`: no own property at all when there is no target.
  declare readonly target?: string;

  constructor(syscall: string, errno: number, target?: string) {
    const code = errnoName(errno);
    super(target === undefined ? `${syscall}: ${code}` : `${syscall} ${target}: ${code}`);
    this.name = 'SyscallError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
    if (target !== undefined) this.target = target;
  }
}

/** True when `err` is a SyscallError with one of the given codes. */
export function isSyscallError(err: unknown, ...codes: string[]): err is SyscallError {
  return err instanceof SyscallError && (codes.length === 0 || codes.includes(err.code));
}
