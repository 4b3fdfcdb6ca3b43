// Reload on file changes: the configuration file, and every certificate, key
// and CA file it names. chokidar watches the parent directories, not the
// files (FACTS.md: a watch on the file misses the second Kubernetes `..data`
// swap; a directory watch caught it, certbot's symlink switch and
// rename-over every time). Bursts of events are debounced.
//
// Certificates come in pairs written a moment apart (certbot relinks cert,
// then key; a deploy script copies one, then the other). A change to TLS
// files alone is acted on only once the files on disk form a valid set again:
// until then the watch waits (re-checking at every event and every
// TLS_RECHECK_MS), bounded by `tls.pair_wait`; past it the change is handed
// to the reload anyway, which refuses it with the file and the reason (so it
// is logged, counted and shown by `handover status`) and the old generation
// serves on. A TLS change that changes nothing served (a touch) is ignored.
import { watch, type FSWatcher } from 'chokidar';
import { basename, dirname, resolve } from 'node:path';
import { ResourceShortage, type Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { loadTlsMaterial, sameMaterial, TlsError, type TlsMaterial } from '../tls/material.js';
import { monotonic } from './clock.js';

/** Editors and `kubectl` write in several steps; wait for quiet before acting. */
export const WATCH_DEBOUNCE_MS = 300;
/** How long start-up waits for the watcher's initial scan before serving without it. */
export const WATCH_READY_TIMEOUT_MS = 5_000;
/**
 * TLS files alone: certbot's relinking and the kubelet's swap take
 * milliseconds, and a set caught half-replaced is waited for anyway, so a
 * short quiet period suffices and the new certificate is served sooner.
 */
export const TLS_DEBOUNCE_MS = 100;
/** While TLS files do not form a valid set, look again this often even without events (a chmod may bring none). */
export const TLS_RECHECK_MS = 250;

type Kind = 'config' | 'tls';

export interface WatchHooks {
  /**
   * `watch`: the configuration file changed; `tls`: only TLS files did, and
   * they form a valid set (or the wait ran out). `done` runs once the reload
   * that served the request has its report.
   */
  readonly reload: (trigger: 'watch' | 'tls', done: () => void) => void;
  /** What the active generation serves, to tell a real change from a touch. */
  readonly served: () => ReadonlyMap<string, TlsMaterial> | undefined;
  readonly log: Logger;
}

/** Every file a configuration depends on, with what a change to it calls for. */
function watchedFiles(config: Config): Map<string, Kind> {
  const files = new Map<string, Kind>([[resolve(config.file), 'config']]);
  for (const l of config.listen) {
    if (!l.tls) continue;
    const paths = [l.tls.cert, l.tls.key, ...(l.tls.ca ? [l.tls.ca] : []), ...l.tls.sni.flatMap((s) => [s.cert, s.key])];
    for (const p of paths) if (!files.has(resolve(p))) files.set(resolve(p), 'tls');
  }
  return files;
}

export class ConfigWatcher {
  /** Equal for two configurations that need the same watch (rewatch() keeps the watcher then). */
  readonly key: string;
  /** Resolves once the initial scan is done and changes are being seen. */
  readonly ready: Promise<void>;
  private readonly watcher: FSWatcher;
  /** Per watched directory: entry name -> kind. */
  private readonly dirs = new Map<string, Map<string, Kind>>();
  private timer: NodeJS.Timeout | undefined;
  private pending = { config: false, tls: false };
  private waiting: { since: number; reason: string } | undefined;
  /**
   * The material of a `tls` reload requested and not yet reported: a late
   * event for the same files (chokidar reports a rename-over in several
   * events) must not queue a second reload of the same certificates.
   */
  private requested: ReadonlyMap<string, TlsMaterial> | undefined;

  static keyOf(config: Config): string {
    return JSON.stringify([...watchedFiles(config)].sort());
  }

  constructor(
    private config: Config,
    private readonly hooks: WatchHooks,
  ) {
    this.key = ConfigWatcher.keyOf(config);
    for (const [file, kind] of watchedFiles(config)) {
      const dir = dirname(file);
      const names = this.dirs.get(dir) ?? new Map<string, Kind>();
      if (names.get(basename(file)) !== 'config') names.set(basename(file), kind);
      this.dirs.set(dir, names);
    }
    // atomic: false: chokidar would hold an unlink back 100 ms to see whether
    // an add follows (editors' atomic saves); every event is worth a look here.
    this.watcher = watch([...this.dirs.keys()], { depth: 0, ignoreInitial: true, followSymlinks: false, atomic: false });
    this.watcher.on('all', (_event, path) => this.onEvent(resolve(path)));
    this.watcher.on('error', (err) => hooks.log.warn({ err }, 'file watcher error'));
    this.ready = new Promise((done) => this.watcher.once('ready', () => done()));
  }

  /** The running configuration changed in ways that need no other watch (e.g. tls.pair_wait). */
  update(config: Config): void {
    this.config = config;
  }

  private onEvent(path: string): void {
    const names = this.dirs.get(dirname(path));
    if (!names) return;
    const name = basename(path);
    // `..data` and `..2024_…` are the Kubernetes atomic writer's swap entries:
    // they change every file of the directory at once.
    const kinds = name.startsWith('..') ? [...new Set(names.values())] : [names.get(name)].filter((k) => k !== undefined);
    if (kinds.length === 0) return;
    for (const k of kinds) this.pending[k] = true;
    this.schedule(this.pending.config ? WATCH_DEBOUNCE_MS : TLS_DEBOUNCE_MS);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(), ms);
  }

  private settle(): void {
    const { config, tls } = this.pending;
    if (config) {
      // The reload reads the new file and its TLS files itself.
      this.reset();
      this.hooks.reload('watch', () => {});
      return;
    }
    if (!tls) return;
    let fresh: ReadonlyMap<string, TlsMaterial>;
    try {
      fresh = loadTlsMaterial(this.config);
    } catch (err) {
      // Out of descriptors for a moment: the files may be fine; look again like at a half-written pair.
      if (err instanceof ResourceShortage) this.wait(TlsError.of(err.file, err.reason));
      else if (err instanceof TlsError) this.wait(err);
      else throw err;
      return;
    }
    const waited = this.waiting ? monotonic() - this.waiting.since : 0;
    this.reset();
    const served = this.hooks.served();
    if ((served && sameMaterial(served, fresh)) || (this.requested && sameMaterial(this.requested, fresh))) {
      this.hooks.log.debug('TLS files changed on disk, but nothing differs from what is served or about to be; no reload');
      return;
    }
    if (waited > 0) this.hooks.log.info({ waitedMs: waited }, `TLS files form a valid set again after ${waited} ms; reloading`);
    this.requestTls(fresh);
  }

  private requestTls(material: ReadonlyMap<string, TlsMaterial> | undefined): void {
    this.requested = material;
    this.hooks.reload('tls', () => {
      if (this.requested === material) this.requested = undefined;
    });
  }

  private wait(err: TlsError): void {
    const now = monotonic();
    const first = this.waiting === undefined;
    const since = this.waiting?.since ?? now;
    const limit = this.config.tls.pairWaitMs;
    if (first || this.waiting?.reason !== err.message) {
      this.hooks.log.info(
        { problems: err.problems, pairWaitMs: limit },
        `TLS files changed but are not a valid set yet; serving the old certificates and waiting up to ${limit} ms: ${err.message.split('\n').join('; ')}`,
      );
    }
    this.waiting = { since, reason: err.message };
    if (now - since >= limit) {
      this.hooks.log.warn(
        { problems: err.problems, waitedMs: now - since },
        `TLS files still not a valid set after ${now - since} ms; the reload will refuse them and the old certificates stay: ${err.message.split('\n').join('; ')}`,
      );
      this.reset();
      this.requestTls(undefined);
      return;
    }
    this.schedule(Math.min(TLS_RECHECK_MS, limit - (now - since)));
  }

  private reset(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = { config: false, tls: false };
    this.waiting = undefined;
  }

  async close(): Promise<void> {
    this.reset();
    await this.watcher.close();
  }
}
