// `handover check`: the same validation `start` and every reload run, in the
// configuration's terms (a problem names the configuration key, the file and
// the reason), plus what would be served.
import { ConfigError, type Config } from '../config/index.js';
import { tlsWarnings } from './expiry.js';
import { loadTlsMaterial, TlsError, type TlsMaterial } from './material.js';

const DAY_MS = 86_400_000;

/** Validates every TLS file the configuration names. Throws ConfigError (exit 2) listing each problem. */
export function checkTls(config: Config, now = new Date()): ReadonlyMap<string, TlsMaterial> {
  try {
    return loadTlsMaterial(config, now);
  } catch (err) {
    if (!(err instanceof TlsError)) throw err;
    throw new ConfigError(err.problems.map((p) => ({ file: config.file, path: p.key ?? '', message: `${p.file}: ${p.reason}` })));
  }
}

/** Lines for `check`: per address the certificates served, then the warnings. */
export function describeTls(materials: ReadonlyMap<string, TlsMaterial>, warnBeforeMs: number, now = new Date()): string[] {
  const lines: string[] = [];
  for (const m of materials.values()) {
    const extras = [m.http2 ? 'h2 + http/1.1' : 'http/1.1', ...(m.ca ? [`client certificates from ${m.ca.file}`] : [])];
    lines.push(`  tls:     ${m.address} (${extras.join(', ')})`);
    for (const { name, pair } of [{ name: 'default', pair: m.default }, ...m.sni]) {
      const leaf = pair.chain[0];
      if (!leaf) continue;
      const days = Math.floor((leaf.notAfter.getTime() - now.getTime()) / DAY_MS);
      lines.push(`    ${name}: ${leaf.subject}, serial ${leaf.serial}, expires ${leaf.notAfter.toISOString()} (in ${days} days), ${pair.certFile}`);
    }
  }
  for (const w of tlsWarnings(materials, warnBeforeMs, now)) lines.push(`  warning: ${w}`);
  return lines;
}
