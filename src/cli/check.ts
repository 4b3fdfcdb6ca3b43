// `handover check`: the full validation of a configuration file, and with
// --kernel what the kernel of this network namespace allows.
import { ConfigError, loadConfigAsync, type Config } from '../config/index.js';
import type { Output } from './commands.js';

/** Exit code: 0 ok, 2 invalid configuration, 1 with --kernel when the configured strategy cannot run here. */
export async function check(file: string, kernel: boolean, json: boolean, out: Output): Promise<number> {
  let config: Config;
  let tls: readonly string[];
  try {
    config = await loadConfigAsync(file);
    tls = await checkedTls(config); // the validation start and reload run; throws ConfigError
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
      ...(tls.length > 0 ? { tls: tls.map((line) => line.trim()) } : {}),
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
  for (const line of tls) out(line);
  for (const w of config.warnings) out(`warning: ${w}`);
  if (!k) return 0;
  for (const line of k.lines) out(line);
  return k.ok ? 0 : 1;
}

/**
 * The lines for the TLS files, checked. The TLS code (and node:tls, ~20 ms of
 * start-up) is loaded only when a listener has TLS.
 */
async function checkedTls(config: Config): Promise<readonly string[]> {
  if (!config.listen.some((l) => l.tls)) return [];
  const { checkTls, describeTls } = await import('../tls/check.js');
  return describeTls(checkTls(config), config.tls.warnBeforeMs);
}
