// `handover check`: the full validation of a configuration file, and with
// --kernel what the kernel of this network namespace allows.
import { ConfigError, loadConfigAsync, type Config } from '../config/index.js';
import { checkTls, describeTls } from '../tls/check.js';
import type { TlsMaterial } from '../tls/material.js';
import type { Output } from './commands.js';

/** Exit code: 0 ok, 2 invalid configuration, 1 with --kernel when the configured strategy cannot run here. */
export async function check(file: string, kernel: boolean, json: boolean, out: Output): Promise<number> {
  let config: Config;
  let tls: ReadonlyMap<string, TlsMaterial>;
  try {
    config = await loadConfigAsync(file);
    tls = checkTls(config); // the validation start and reload run; throws ConfigError
  } catch (err) {
    if (!(json && err instanceof ConfigError)) throw err;
    out(JSON.stringify({ ok: false, file, problems: err.problems }, null, 2));
    return 2;
  }
  // --kernel only: the probes load ffi-rs and the BPF code, which plain `check` has no use for.
  const k = kernel ? await (await import('./kernel-check.js')).kernelCheck(config) : undefined;
  if (json) {
    const summary = {
      ok: true,
      file: config.file,
      app: config.app,
      workers: config.workers,
      listen: config.listen.map((l) => ({ address: l.address.text, tls: l.tls !== undefined })),
      control: config.controlSocket,
      ...(config.warnings.length > 0 ? { warnings: config.warnings } : {}),
      ...(tls.size > 0 ? { tls: describeTls(tls, config.tls.warnBeforeMs).map((line) => line.trim()) } : {}),
      ...(k ? { kernel: { ok: k.ok, requestedStrategy: config.reload.strategy, lines: k.lines.map((line) => line.trim()) } } : {}),
    };
    out(JSON.stringify(summary, null, 2));
    return k && !k.ok ? 1 : 0;
  }
  out(`configuration ok: ${config.file}`);
  out(`  app:     ${config.app}`);
  out(`  workers: ${config.workers}`);
  out(`  listen:  ${config.listen.map((l) => l.address.text + (l.tls ? ' (tls)' : '')).join(', ')}`);
  out(`  control: ${config.controlSocket}`);
  for (const line of describeTls(tls, config.tls.warnBeforeMs)) out(line);
  for (const w of config.warnings) out(`warning: ${w}`);
  if (!k) return 0;
  for (const line of k.lines) out(line);
  return k.ok ? 0 : 1;
}
