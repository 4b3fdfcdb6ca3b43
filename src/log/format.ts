// Which shape the log takes: JSON lines (for collectors), human-readable
// (a terminal), or journal lines (systemd: one line per event with a `<N>`
// syslog priority prefix, so `journalctl -p warning` selects by level).
import { fstatSync } from 'node:fs';

export const LOG_FORMATS = ['json', 'pretty', 'journal'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

function isLogFormat(value: string | undefined): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value ?? '');
}

/**
 * True when $JOURNAL_STREAM ("<device>:<inode>", set by systemd for
 * StandardOutput=journal) names the file `fd` is open on. Comparing both
 * numbers is what sd_journal_stream_fd's users are told to do: a child whose
 * stdout was redirected elsewhere inherits the variable but not the stream.
 */
export function isJournalStream(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const m = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (!m?.[1] || !m[2]) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch {
    return false;
  }
}

/**
 * The format to write, by precedence: HANDOVER_LOG_FORMAT; the older
 * HANDOVER_LOG_PRETTY (1 pretty, 0 json); the configuration's `log.format`
 * unless `auto`; journal when stdout is systemd's journal stream; pretty on a
 * terminal; json otherwise.
 */
export function chooseLogFormat(configured: LogFormat | 'auto' = 'auto', env: NodeJS.ProcessEnv = process.env, fd = 1, isTTY = process.stdout.isTTY === true): LogFormat {
  const explicit = env['HANDOVER_LOG_FORMAT'];
  if (isLogFormat(explicit)) return explicit;
  const pretty = env['HANDOVER_LOG_PRETTY'];
  if (pretty === '1') return 'pretty';
  if (pretty === '0') return 'json';
  if (configured !== 'auto') return configured;
  if (isJournalStream(env, fd)) return 'journal';
  return isTTY ? 'pretty' : 'json';
}
