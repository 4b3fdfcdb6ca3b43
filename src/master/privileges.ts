// The master's privileges: what its workers inherit, what it keeps for
// itself, and what its workers' user should not be able to change.
//
// What the master needs, and when (it decides at start, from the start
// configuration; a later reload that needs more is a restart):
//   cap_setuid, cap_setgid  spawn workers as `user`/`group` (every spawn)
//   cap_kill                signal workers that run as another uid
//   cap_net_bind_service    bind ports below ip_unprivileged_port_start:
//                           at every reload and respawn (fresh sockets)
//   cap_bpf                 the bpf strategy loads a program per reload
//   cap_net_admin           reload.set_tcp_migrate_req writes the sysctl
// Everything else is dropped once the first generation serves. capset(2)
// changes one thread: the master's main thread, where every bind, spawn and
// kill happens; its helper threads only read files.
import { lstatSync, readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import {
  capabilityBit, capabilityMask, capabilityNames, clearAmbientCapabilities, constants, getCapabilities,
  getSecurebits, readCredentials, setCapabilities, setNoNewPrivs, setSecurebits, type Capability,
} from '../sys/index.js';
import { resolveIdentity } from './identity.js';

const UNPRIVILEGED_PORT_START = '/proc/sys/net/ipv4/ip_unprivileged_port_start';

/**
 * Before the first worker is spawned: no_new_privs (inherited by every
 * worker), no ambient or inheritable capabilities to pass on at execve, and
 * for a root master SECBIT_NOROOT, so that workers running as root gain no
 * capabilities at execve either. The master's own effective and permitted
 * sets are untouched here.
 */
export function confineWorkers(log: Logger): void {
  const steps: string[] = [];
  const attempt = (what: string, step: () => boolean): void => {
    try {
      if (step()) steps.push(what);
    } catch (err) {
      log.warn({ err }, `could not ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const start = readCredentials();
  attempt('set no_new_privs', () => {
    if (start.noNewPrivs) return false;
    setNoNewPrivs();
    return true;
  });
  attempt('clear the ambient capabilities', () => {
    if (start.ambient === 0n) return false;
    clearAmbientCapabilities();
    return true;
  });
  attempt('clear the inheritable capabilities', () => {
    const caps = getCapabilities();
    if (caps.inheritable === 0n) return false;
    setCapabilities({ ...caps, inheritable: 0n });
    return true;
  });
  attempt('set SECBIT_NOROOT', () => {
    const bits = getSecurebits();
    const canSet = (getCapabilities().effective & capabilityBit('setpcap')) !== 0n;
    if (start.uid !== 0 || (bits & constants.SECBIT_NOROOT) !== 0 || !canSet) return false;
    setSecurebits(bits | constants.SECBIT_NOROOT);
    return true;
  });
  if (steps.length > 0) log.debug(`before spawning workers: ${steps.join(', ')}`);
}

function unprivilegedPortStart(): number {
  try {
    return Number(readFileSync(UNPRIVILEGED_PORT_START, 'utf8').trim());
  } catch {
    return 1024;
  }
}

/** The capabilities `config` needs the master to keep, each with the reason. */
export function neededCapabilities(config: Config, portStart = unprivilegedPortStart()): Map<Capability, string> {
  const needs = new Map<Capability, string>();
  if (config.user !== undefined || config.group !== undefined) {
    const who = config.user ?? `group ${config.group ?? ''}`;
    needs.set('setuid', `spawning workers as ${who}`);
    needs.set('setgid', `spawning workers as ${who}`);
    needs.set('kill', `signalling workers that run as ${who}`);
  }
  const ports = [...config.listen.map((l) => l.address.port), ...(config.metrics ? [config.metrics.listen.port] : [])];
  const low = ports.filter((p) => p > 0 && p < portStart);
  if (low.length > 0) needs.set('net_bind_service', `binding port ${[...new Set(low)].join(', ')} at every reload`);
  if (config.reload.strategy === 'bpf' || config.reload.strategy === 'auto') needs.set('bpf', `loading the reuseport program (reload.strategy ${config.reload.strategy})`);
  if (config.reload.setTcpMigrateReq) needs.set('net_admin', 'setting net.ipv4.tcp_migrate_req (reload.set_tcp_migrate_req)');
  return needs;
}

/**
 * Once the first generation serves: keeps the needed capabilities it has,
 * drops the others from the effective, permitted and inheritable sets.
 * Returns the capabilities kept.
 */
export function dropMasterCapabilities(config: Config, log: Logger): bigint {
  let caps;
  try {
    caps = getCapabilities();
  } catch (err) {
    log.warn({ err }, 'could not read the master’s capabilities; keeping them');
    return 0n;
  }
  if (caps.permitted === 0n && caps.inheritable === 0n) return 0n;
  const needs = neededCapabilities(config);
  const keep = caps.permitted & capabilityMask([...needs.keys()]);
  try {
    setCapabilities({ effective: caps.effective & keep, permitted: keep, inheritable: 0n });
  } catch (err) {
    log.warn({ err }, `could not drop the master’s capabilities: ${err instanceof Error ? err.message : String(err)}`);
    return caps.permitted;
  }
  const reasons = [...needs].filter(([cap]) => (keep & capabilityBit(cap)) !== 0n).map(([cap, why]) => `cap_${cap} (${why})`);
  log.info(
    { kept: capabilityNames(keep), dropped: capabilityNames(caps.permitted & ~keep) },
    `capabilities kept for the master's life: ${reasons.length > 0 ? reasons.join(', ') : 'none'}; the others are dropped (a reload that needs more must be a restart)`,
  );
  return keep;
}

function canWrite(st: Stats, uid: number, gid: number): boolean {
  // Linux checks the owner's bits for the owner, the group's for the group, only then the others'.
  if (st.uid === uid) return (st.mode & 0o200) !== 0;
  if (st.gid === gid) return (st.mode & 0o020) !== 0;
  return (st.mode & 0o002) !== 0;
}

/**
 * The first path through which `uid`/`gid` could change what `path` holds:
 * the file itself, or a directory on the way to it where it could rename
 * an entry (a sticky directory only lets it rename its own). Both the path
 * as written and its real path are followed; ACLs are not read. Workers have
 * no supplementary groups (Node's spawn calls setgroups(0) when it changes
 * the uid), so only `gid` counts.
 */
export function writableBy(path: string, uid: number, gid: number): string | undefined {
  const paths = new Set([resolve(path)]);
  try {
    paths.add(realpathSync(path));
  } catch {
    /* missing: the lexical path is all there is */
  }
  for (const p of paths) {
    let st: Stats;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (!st.isSymbolicLink() && canWrite(st, uid, gid)) return p;
    for (let child = p, dir = dirname(p); dir !== child; child = dir, dir = dirname(dir)) {
      let dirSt: Stats;
      try {
        dirSt = statSync(dir);
      } catch {
        break;
      }
      const sticky = (dirSt.mode & 0o1000) !== 0;
      if (canWrite(dirSt, uid, gid) && (!sticky || dirSt.uid === uid || st.uid === uid)) return dir;
      st = dirSt;
    }
  }
  return undefined;
}

/** Under a `user`: warns about files the workers' user could change to take over what the master runs next. */
export function warnWritableByWorkers(config: Config, log: Logger): void {
  let identity;
  try {
    identity = resolveIdentity(config.user, config.group);
  } catch {
    return; // the supervisor reports it
  }
  const uid = identity.uid ?? process.getuid?.() ?? 0;
  const gid = identity.gid ?? process.getgid?.() ?? 0;
  if (uid === 0 || (identity.uid === undefined && identity.gid === undefined)) return;
  const checks: [string, string, string][] = [
    [config.app, 'the app module', 'replace the code every new generation loads'],
    [dirname(config.controlSocket), 'the control socket directory', 'replace the control socket and answer `handover` commands'],
    [config.file, 'the configuration file', 'rewrite the configuration the master reloads, user included'],
  ];
  for (const [path, what, risk] of checks) {
    const through = writableBy(path, uid, gid);
    if (through === undefined) continue;
    log.warn(
      { path, writable: through, uid, gid },
      `${what} ${path} can be changed by the workers' user (uid ${uid}) through ${through}: a compromised worker could ${risk}`,
    );
  }
}
