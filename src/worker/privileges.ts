// A worker serves the user's app with no capabilities and no way back to
// them, whatever the master had: a non-root master started with ambient
// capabilities (systemd's AmbientCapabilities=, `setpriv --ambient-caps`)
// passes them to every child it runs, and a root master without `user`
// runs its workers as root.
//
// Capabilities belong to threads, not processes: capset(2) changes only the
// calling thread, and a Node process already runs about ten (V8's and
// libuv's) before any of our code does. So the master makes its workers
// start clean (see master/privileges.ts: no ambient or inheritable set,
// no_new_privs, securebits NOROOT), which covers every thread, and this
// check normally finds nothing to do and costs one read of /proc. When it
// does find capabilities, it clears them on the main thread (where the app
// runs, binds, and forks whatever it spawns) before the app is loaded, sets
// no_new_privs, and warns about the helper threads it cannot reach.
import { readdirSync } from 'node:fs';
import { readCredentials, type Credentials } from '../sys/proc-status.js';

function holdsCapabilities(c: Credentials): boolean {
  return c.effective !== 0n || c.permitted !== 0n || c.ambient !== 0n;
}

/** Threads of this process (other than the main one) that still hold capabilities. */
function privilegedThreads(): number[] {
  const tids: number[] = [];
  for (const name of readdirSync('/proc/self/task')) {
    const tid = Number(name);
    if (tid === process.pid) continue;
    try {
      if (holdsCapabilities(readCredentials(`self/task/${tid}`))) tids.push(tid);
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return tids;
}

/**
 * Drops every capability of the main thread (ambient, effective, permitted,
 * inheritable) and sets no_new_privs. Loads the libc bindings only when
 * there is something to change. Throws when the result is not clean.
 */
export async function dropPrivileges(): Promise<void> {
  const before = readCredentials();
  if (!holdsCapabilities(before) && before.inheritable === 0n && before.noNewPrivs) return;
  const sys = await import('../sys/index.js');
  sys.clearAmbientCapabilities();
  sys.setCapabilities({ effective: 0n, permitted: 0n, inheritable: 0n });
  sys.setNoNewPrivs();
  const after = readCredentials();
  if (holdsCapabilities(after) || !after.noNewPrivs) {
    throw new Error(`could not drop privileges: still CapEff ${sys.capabilityNames(after.effective)}, NoNewPrivs ${after.noNewPrivs ? 1 : 0}`);
  }
  if (!holdsCapabilities(before)) return;
  const threads = privilegedThreads();
  if (threads.length > 0) {
    process.emitWarning(
      `this worker started with ${sys.capabilityNames(before.permitted)}; its main thread dropped them, but ${threads.length} helper threads ` +
        'started earlier keep them (capabilities are per thread). Give the master CAP_SETPCAP or set `user`, so that workers start without any.',
      'HandoverPrivilegeWarning',
    );
  }
}
