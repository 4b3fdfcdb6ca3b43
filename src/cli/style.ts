// Terminal output: colours only for a person at a terminal (https://no-color.org),
// and columns aligned on the text a person sees, not on escape codes.

export interface Palette {
  readonly bold: (s: string) => string;
  readonly dim: (s: string) => string;
  readonly green: (s: string) => string;
  readonly yellow: (s: string) => string;
  readonly red: (s: string) => string;
  readonly cyan: (s: string) => string;
}

const sgr = (on: number, off: number) => (s: string): string => `\x1b[${on}m${s}\x1b[${off}m`;

const COLOURS: Palette = { bold: sgr(1, 22), dim: sgr(2, 22), green: sgr(32, 39), yellow: sgr(33, 39), red: sgr(31, 39), cyan: sgr(36, 39) };
const plain = (s: string): string => s;
const PLAIN: Palette = { bold: plain, dim: plain, green: plain, yellow: plain, red: plain, cyan: plain };

/** Colours when `stream` is a terminal, NO_COLOR is unset or empty, and the terminal is not "dumb". */
export function wantColour(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env['NO_COLOR'] && env['TERM'] !== 'dumb';
}

export function palette(colour: boolean): Palette {
  return colour ? COLOURS : PLAIN;
}

/** A cell: its text, and how to paint it once padded. */
export interface Cell {
  readonly text: string;
  readonly paint?: (s: string) => string;
}

export type Row = readonly (string | Cell)[];

/** Left-aligned columns two spaces apart; trailing blanks trimmed. */
export function table(rows: readonly Row[]): string[] {
  const cells = rows.map((row) => row.map((c): Cell => (typeof c === 'string' ? { text: c } : c)));
  const widths: number[] = [];
  for (const row of cells) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.text.length)));
  return cells.map((row) =>
    row
      .map((c, i) => {
        const padded = i === row.length - 1 ? c.text : c.text.padEnd(widths[i] ?? 0);
        return c.paint ? c.paint(padded) : padded;
      })
      .join('  ')
      .trimEnd(),
  );
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatCpu(seconds: number): string {
  return seconds < 60 ? `${seconds.toFixed(seconds < 10 ? 2 : 1)}s` : formatDuration(seconds * 1000);
}
