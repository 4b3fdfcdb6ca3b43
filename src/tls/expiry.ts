// Certificates that expire soon: a warning at start, in every reload's report
// and once a day, for every certificate served (leaf and chain, every SNI
// name) and every client CA, while it is within `tls.warn_before` of its end.
import type { CertificateInfo, TlsMaterial } from './material.js';

/** How often a long-running master repeats the warnings. */
export const EXPIRY_CHECK_INTERVAL_MS = 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

function certificatesOf(m: TlsMaterial): { what: string; cert: CertificateInfo }[] {
  const pairs = [{ name: undefined as string | undefined, pair: m.default }, ...m.sni];
  return [
    ...pairs.flatMap(({ name, pair }) => pair.chain.map((cert) => ({ what: name ? `certificate for ${name}` : 'certificate', cert }))),
    ...(m.ca?.certs ?? []).map((cert) => ({ what: 'client CA', cert })),
  ];
}

function inWords(ms: number): string {
  if (ms <= 0) return 'has expired';
  const days = Math.floor(ms / DAY_MS);
  if (days >= 2) return `expires in ${days} days`;
  return `expires in ${Math.max(1, Math.round(ms / 3_600_000))} hours`;
}

/** One line per certificate that ends within `warnBeforeMs` of `now`. */
export function expiryWarnings(materials: ReadonlyMap<string, TlsMaterial>, warnBeforeMs: number, now = new Date()): string[] {
  const warnings: string[] = [];
  for (const m of materials.values()) {
    for (const { what, cert } of certificatesOf(m)) {
      const left = cert.notAfter.getTime() - now.getTime();
      if (left >= warnBeforeMs) continue;
      const where = cert.position > 1 ? `${cert.file} (certificate ${cert.position} of the file)` : cert.file;
      warnings.push(`${m.address}: ${what} ${where} (${cert.subject}, serial ${cert.serial}) ${inWords(left)}, on ${cert.notAfter.toISOString()}; renew it`);
    }
  }
  return warnings;
}

export interface ServedTls {
  readonly materials: ReadonlyMap<string, TlsMaterial>;
  readonly warnBeforeMs: number;
}

/** Repeats the expiry warnings for whatever is served at the time, once per interval. */
export class ExpiryMonitor {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly served: () => ServedTls | undefined,
    private readonly warn: (message: string) => void,
    intervalMs = EXPIRY_CHECK_INTERVAL_MS,
  ) {
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  /** Warns now; returns the warnings. */
  check(now = new Date()): string[] {
    const s = this.served();
    const warnings = s ? expiryWarnings(s.materials, s.warnBeforeMs, now) : [];
    for (const w of warnings) this.warn(w);
    return warnings;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** Everything worth a warning about what would be served: names not covered, and expiry. */
export function tlsWarnings(materials: ReadonlyMap<string, TlsMaterial>, warnBeforeMs: number, now = new Date()): string[] {
  return [...[...materials.values()].flatMap((m) => m.warnings), ...expiryWarnings(materials, warnBeforeMs, now)];
}
