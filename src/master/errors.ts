// The text of whatever was thrown, for log lines and reports.

/** An Error's message, or anything else thrown as a string. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
