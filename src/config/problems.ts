// What is wrong with a configuration, ready to print. Apart from the
// loader so that importing the error class (the package's index does)
// loads no parser or schema library.

export interface ConfigProblem {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  /** Dotted key path, e.g. "listen.0.address"; empty for problems of the file as a whole. */
  readonly path: string;
  readonly message: string;
}

/** A configuration that cannot be used. `message` is ready to print, one problem per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];
  /**
   * The control socket the file names (or its default), when that much could
   * be read: `handover reload` still reaches the master to report the refusal.
   */
  controlSocket: string | undefined;

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })));
  }
}

/** `FILE:LINE:COL: KEYPATH: message`, leaving out the parts that are unknown. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

/** Errnos that say the process or host is short of something, not that a file is wrong, with their words. */
const SHORTAGES: Readonly<Record<string, string>> = {
  EMFILE: 'too many open files in this process',
  ENFILE: 'too many open files in the system',
  ENOMEM: 'out of memory',
};

const codeWords = (code: string): string => `${code} (${SHORTAGES[code] ?? 'short of resources'})`;

/**
 * A file could not be read because this process (or the host) ran out of
 * descriptors or memory. Not a problem of the configuration: it is thrown
 * as is, not collected as a located problem, so that a reload says it was
 * refused for want of resources rather than calling the file invalid.
 */
export class ResourceShortage extends Error {
  override readonly name = 'ResourceShortage';

  /** `cannot DOING: CODE (words)`; `doing` defaults to `read FILE`. */
  constructor(
    readonly file: string,
    readonly code: string,
    readonly doing = `read ${file}`,
  ) {
    super(`cannot ${doing}: ${codeWords(code)}`);
  }

  /** `CODE (words)`, without what was being done: e.g. for a TLS problem that names the file itself. */
  get reason(): string {
    return codeWords(this.code);
  }

  /** Whether an errno name (EMFILE, ...) says the process or host is short of something. */
  static isShortage(code: string): boolean {
    return Object.hasOwn(SHORTAGES, code);
  }

  /** Throws a ResourceShortage when `err`'s code is a shortage; returns otherwise. */
  static check(err: unknown, file: string, doing?: string): void {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (typeof code === 'string' && ResourceShortage.isShortage(code)) throw new ResourceShortage(file, code, doing);
  }
}
