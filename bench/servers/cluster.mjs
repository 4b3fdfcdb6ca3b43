// Node's cluster module with the usual SIGHUP reload: fork a new set of
// workers, wait until each is 'listening', then disconnect the old ones and
// kill any still alive after KILL_AFTER_MS (the 2 s of Node's own
// `worker.disconnect()` example). A SIGHUP during a reload queues one more.
// Round robin or SCHED_NONE comes from NODE_CLUSTER_SCHED_POLICY (rr|none),
// as users set it. Prints JSON lines: {"event":"ready"} once serving and
// {"event":"reloaded","ms":N} after each reload.
import cluster from 'node:cluster';
import { performance } from 'node:perf_hooks';
import { createServer, port } from './serve.mjs';

const KILL_AFTER_MS = 2000;

if (cluster.isPrimary) {
  const workers = Number(process.env.BENCH_WORKERS ?? 2);
  const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
  let reloading = false;
  let again = false;

  const forkAll = () =>
    Promise.all(
      Array.from({ length: workers }, () => new Promise((resolve) => cluster.fork().once('listening', resolve))),
    );

  const reload = async () => {
    if (reloading) {
      again = true;
      return;
    }
    reloading = true;
    const started = performance.now();
    const old = Object.values(cluster.workers ?? {});
    await forkAll();
    for (const worker of old) {
      worker.disconnect();
      setTimeout(() => worker.isDead() || worker.kill('SIGKILL'), KILL_AFTER_MS).unref();
    }
    say({ event: 'reloaded', ms: Math.round(performance.now() - started) });
    reloading = false;
    if (again) {
      again = false;
      void reload();
    }
  };

  // A worker that dies on its own is replaced (the usual cluster setup).
  cluster.on('exit', (worker) => {
    if (!worker.exitedAfterDisconnect) cluster.fork();
  });
  process.on('SIGHUP', () => void reload());
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker.process.kill('SIGKILL');
    process.exit(0);
  });
  void forkAll().then(() => say({ event: 'ready' }));
} else {
  createServer().listen(port());
}
