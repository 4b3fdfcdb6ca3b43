// Workers run with no capabilities and no way back to them, whether the
// master is root (workers as `user`) or a non-root master given ambient
// capabilities (setpriv, as systemd's AmbientCapabilities= does); the
// master keeps only what its configuration needs; systemd's variables do
// not reach the workers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { resolveIdentity } from '../../src/master/identity.js';
import { neededCapabilities, writableBy } from '../../src/master/privileges.js';
import { capabilityMask, parseCredentials } from '../../src/sys/index.js';
import { runLoad } from '../harness/load.js';
import { HELLO, MasterProcess, ROOT, until } from '../harness/master.js';
import { NOBODY, nobodyCannotRead } from '../harness/nobody.js';
import { needsRoot, Netns } from '../harness/netns.js';
import { NotifySocket } from './notify-socket.js';

const WORKER = join(ROOT, 'dist/worker/main.js');
const SYSTEMD_VARIABLES = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'JOURNAL_STREAM'];
const dir = mkdtempSync(join(tmpdir(), 'handover-priv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Workers as nobody must be able to read dist/ and the app: not so for a checkout under a 0700 directory. */
function nobodyCanRead(t: TestContext): boolean {
  const why = nobodyCannotRead(WORKER, HELLO);
  if (why === undefined) return true;
  t.skip(`${why}, so processes running as nobody could not load it`);
  return false;
}

/** A worker as the test requires it: the uid, no capabilities in any thread, no_new_privs, no systemd variables. */
function assertUnprivileged(pid: number, uid: number): void {
  const main = parseCredentials(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.equal(main.uid, uid, `worker ${pid} runs as uid ${uid}`);
  assert.deepEqual([main.effective, main.permitted, main.ambient], [0n, 0n, 0n], `worker ${pid}: CapEff, CapPrm and CapAmb are 0`);
  assert.equal(main.noNewPrivs, true, `worker ${pid}: NoNewPrivs 1`);
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const thread = parseCredentials(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
    assert.equal(thread.effective | thread.permitted, 0n, `thread ${tid} of worker ${pid} holds no capability either`);
  }
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').map((kv) => kv.split('=')[0]);
  for (const name of SYSTEMD_VARIABLES) assert.ok(!environ.includes(name), `${name} is not in worker ${pid}'s environment`);
}

const credentials = (pid: number) => parseCredentials(readFileSync(`/proc/${pid}/status`, 'utf8'));

async function workerPids(master: MasterProcess, generation: number): Promise<number[]> {
  return until(async () => {
    const g = (await master.status()).generations.find((x) => x.generation === generation);
    const pids = g?.workers.map((w) => w.pid).filter((p): p is number => p !== null) ?? [];
    return g && g.workers.every((w) => w.state === 'serving') && pids.length === g.workers.length ? pids : undefined;
  }, 10_000, `generation ${generation} serving`);
}

describe('privileges', () => {
  it('root master, workers as `user`: no capabilities, no_new_privs; the master keeps setuid, setgid, kill (and bpf for auto)', async (t) => {
    if (!needsRoot(t) || !nobodyCanRead(t)) return;
    // An app directory the workers' user owns: the master must warn that a worker could replace the code.
    const appDir = join(dir, 'owned-by-nobody');
    mkdirSync(appDir);
    chmodSync(dir, 0o755);
    copyFileSync(HELLO, join(appDir, 'app.js'));
    chownSync(appDir, NOBODY, NOBODY);
    const socket = new NotifySocket(`@handover-priv-${process.pid}-${Date.now()}`);
    const master = MasterProcess.start({
      yaml: `app: ${appDir}/app.js\nworkers: 1\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: false, settle: 0s, drain_timeout: 2s }\nuser: nobody\ngroup: nogroup\n`,
      env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1', JOURNAL_STREAM: '1:1' },
    });
    try {
      for (const pid of await master.serving()) assertUnprivileged(pid, NOBODY);
      await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith("capabilities kept for the master's life"), 5_000);
      const m = credentials(master.pid);
      assert.equal(m.uid, 0);
      assert.equal(m.effective, capabilityMask(['setuid', 'setgid', 'kill', 'bpf']), 'the master kept exactly what it needs');
      assert.equal(m.inheritable | m.ambient, 0n);
      assert.ok(
        master.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith(`the app module ${appDir}/app.js can be changed by the workers' user (uid ${NOBODY}) through ${appDir}`)),
        'warns that the workers can replace the app',
      );
      // After the drop the master can still spawn workers as nobody.
      const r = await master.control({ cmd: 'reload' });
      assert.equal((r.result as { result: string }).result, 'ok', JSON.stringify(r));
      for (const pid of await workerPids(master, 2)) assertUnprivileged(pid, NOBODY);
    } finally {
      await master.dispose();
      socket.close();
    }
  });

  it('non-root master with ambient capabilities (setpriv): workers get none; the master keeps net_bind_service for port 80', async (t) => {
    if (!needsRoot(t) || !nobodyCanRead(t)) return;
    const ns = await Netns.create('priv');
    let master: MasterProcess | undefined;
    try {
      await ns.sysctl('net.ipv4.tcp_migrate_req', 1); // migrate: every reload binds fresh sockets on port 80
      master = MasterProcess.start({
        yaml: `app: ${HELLO}\nworkers: 1\nlisten: [{ address: 127.0.0.1:80 }]\nreload: { watch: false, settle: 0s, drain_timeout: 2s, strategy: migrate }\n`,
        ns,
        wrapper: ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service'],
        owner: { uid: NOBODY, gid: NOBODY },
        env: { NOTIFY_SOCKET: join(dir, 'unreachable.sock'), WATCHDOG_USEC: '30000000' },
      });
      const pids = await master.serving();
      await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith("capabilities kept for the master's life"), 5_000);
      const m = credentials(master.pid);
      assert.equal(m.uid, NOBODY);
      assert.equal(m.effective, capabilityMask(['net_bind_service']), 'the master keeps net_bind_service (port 80 is bound at every reload)');
      assert.equal(m.ambient, 0n, 'and passes nothing on: its ambient set is empty');
      for (const pid of pids) assertUnprivileged(pid, NOBODY);
      // A reload binds fresh sockets on port 80 (migrate): the kept capability is enough.
      const r = await master.control({ cmd: 'reload' });
      assert.equal((r.result as { result: string; strategy: string }).strategy, 'migrate');
      assert.equal((r.result as { result: string }).result, 'ok', JSON.stringify(r));
      const load = await runLoad(ns, { url: 'http://127.0.0.1:80/', requests: 10, concurrency: 1 });
      assert.equal(load.ok, 10);
    } finally {
      await master?.dispose();
      await ns.destroy();
    }
  });

  it("a worker's own drop clears its main thread only: capabilities belong to threads (why the master makes workers start clean)", (t) => {
    if (!needsRoot(t) || !nobodyCanRead(t)) return;
    const script = `
      import { readdirSync, readFileSync } from 'node:fs';
      import { dropPrivileges } from ${JSON.stringify(join(ROOT, 'dist/worker/privileges.js'))};
      await dropPrivileges();
      const eff = (f) => /CapEff:\\s*(\\S+)/.exec(readFileSync(f, 'utf8'))[1];
      const threads = readdirSync('/proc/self/task').filter((t) => Number(t) !== process.pid).map((t) => eff('/proc/self/task/' + t + '/status'));
      console.log(JSON.stringify({ main: readFileSync('/proc/self/status', 'utf8'), privilegedThreads: threads.filter((e) => BigInt('0x' + e) !== 0n).length }));`;
    const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { main: string; privilegedThreads: number };
    const main = parseCredentials(out.main);
    assert.deepEqual([main.effective, main.permitted, main.ambient, main.inheritable, main.noNewPrivs], [0n, 0n, 0n, 0n, true]);
    assert.ok(out.privilegedThreads > 0, 'helper threads started before the drop keep their capabilities');
    assert.match(r.stderr, /HandoverPrivilegeWarning: this worker started with cap_net_bind_service/);
  });
});

describe('what the master needs and what the workers could change', () => {
  const config = (extra: string) => {
    writeFileSync(join(dir, 'app.js'), 'export default () => {};\n');
    return parseConfig(`app: app.js\nworkers: 1\nlisten: [{ address: 127.0.0.1:8080 }]\n${extra}`, join(dir, 'needs.yaml'));
  };

  it('needs: setuid/setgid/kill for `user`, net_bind_service below ip_unprivileged_port_start, bpf for bpf|auto, net_admin for the sysctl', () => {
    assert.deepEqual([...neededCapabilities(config(''), 1024).keys()], ['bpf']);
    assert.deepEqual([...neededCapabilities(config('reload: { strategy: migrate }\n'), 1024).keys()], []);
    assert.deepEqual(
      [...neededCapabilities(config('user: nobody\nreload: { strategy: migrate, set_tcp_migrate_req: true }\nmetrics: { listen: 127.0.0.1:443 }\n'), 1024).keys()],
      ['setuid', 'setgid', 'kill', 'net_bind_service', 'net_admin'],
    );
    assert.deepEqual([...neededCapabilities(config('reload: { strategy: migrate }\n'), 9000).keys()], ['net_bind_service'], 'the namespace decides what is privileged');
  });

  it("a numeric user takes its primary group from /etc/passwd (not the master's gid 0)", (t) => {
    if (!needsRoot(t)) return;
    assert.deepEqual(resolveIdentity(String(NOBODY)), { uid: NOBODY, gid: NOBODY });
    assert.throws(() => resolveIdentity('4000123'), /user 4000123 has no entry in \/etc\/passwd; set group too/);
    assert.deepEqual(resolveIdentity('4000123', '4000124'), { uid: 4000123, gid: 4000124 });
  });

  it('writableBy: the file, a directory on the way that lets the user rename it, not a sticky one', () => {
    const uid = process.getuid?.() ?? 0;
    const other = uid === NOBODY ? NOBODY - 1 : NOBODY;
    const base = mkdtempSync(join(dir, 'w-'));
    const sub = join(base, 'sub');
    mkdirSync(sub);
    const file = join(sub, 'app.js');
    writeFileSync(file, '');
    chmodSync(base, 0o755);
    chmodSync(sub, 0o755);
    chmodSync(file, 0o644);
    assert.equal(writableBy(file, uid, uid), file, 'the owner can write the file itself');
    assert.equal(writableBy(file, other, other), undefined);
    chmodSync(sub, 0o777);
    assert.equal(writableBy(file, other, other), sub, 'a directory anyone can write lets anyone rename the file');
    chmodSync(sub, 0o1777);
    assert.equal(writableBy(file, other, other), undefined, 'sticky: only the file owner may rename it');
    chmodSync(sub, 0o755);
    chmodSync(file, 0o666);
    assert.equal(writableBy(file, other, other), file);
  });
});

before(() => Netns.reapStale());
after(() => Netns.reapStale());
