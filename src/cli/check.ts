// `handover check`: the full validation of a configuration file, and with
// --kernel what the kernel of this network namespace allows.
import { release } from 'node:os';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { readTcpMigrateReq } from '../metrics/kernel.js';
import { chooseStrategy, SYSCTL_HINT } from '../net/strategy.js';
import { checkTls, describeTls } from '../tls/check.js';
import type { TlsMaterial } from '../tls/material.js';
import type { Output } from './commands.js';

interface KernelView {
  readonly release: string;
  /** null: no such sysctl (Linux < 5.14). */
  readonly tcpMigrateReq: 0 | 1 | null;
  readonly strategy: string;
  readonly warning?: string;
}

function kernelView(config: Config): KernelView {
  const migrate = readTcpMigrateReq();
  const choice = chooseStrategy(config.reload.strategy, migrate);
  return { release: release(), tcpMigrateReq: migrate, strategy: choice.strategy, ...(choice.warning ? { warning: choice.warning } : {}) };
}

export function check(file: string, kernel: boolean, json: boolean, out: Output): number {
  let config: Config;
  let tls: ReadonlyMap<string, TlsMaterial>;
  try {
    config = loadConfig(file);
    tls = checkTls(config); // the validation start and reload run; throws ConfigError
  } catch (err) {
    if (!(json && err instanceof ConfigError)) throw err;
    out(JSON.stringify({ ok: false, file, problems: err.problems }, null, 2));
    return 2;
  }
  const k = kernel ? kernelView(config) : undefined;
  if (json) {
    const summary = {
      ok: true,
      file: config.file,
      app: config.app,
      workers: config.workers,
      listen: config.listen.map((l) => ({ address: l.address.text, tls: l.tls !== undefined })),
      control: config.controlSocket,
      ...(tls.size > 0 ? { tls: describeTls(tls, config.tls.warnBeforeMs).map((line) => line.trim()) } : {}),
      ...(k ? { kernel: { ...k, requestedStrategy: config.reload.strategy } } : {}),
    };
    out(JSON.stringify(summary, null, 2));
    return 0;
  }
  out(`configuration ok: ${config.file}`);
  out(`  app:     ${config.app}`);
  out(`  workers: ${config.workers}`);
  out(`  listen:  ${config.listen.map((l) => l.address.text + (l.tls ? ' (tls)' : '')).join(', ')}`);
  out(`  control: ${config.controlSocket}`);
  for (const line of describeTls(tls, config.tls.warnBeforeMs)) out(line);
  if (!k) return 0;
  out(`kernel: Linux ${k.release}`);
  out(
    k.tcpMigrateReq === null
      ? '  net.ipv4.tcp_migrate_req: absent (Linux < 5.14): no kernel migration'
      : `  net.ipv4.tcp_migrate_req = ${k.tcpMigrateReq} (in this network namespace)`,
  );
  out(`  reload.strategy: ${config.reload.strategy} -> ${k.strategy}`);
  if (k.warning) out(`  warning: ${k.warning}`);
  if (k.tcpMigrateReq !== 1 && !k.warning) {
    out(`  kernel migration is off: reloads hand listeners over by ${k.strategy}; for migration ${SYSCTL_HINT}`);
    if (config.reload.setTcpMigrateReq) out('  reload.set_tcp_migrate_req is true: a root master will set it at start');
  }
  return 0;
}
