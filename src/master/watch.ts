// Reload on configuration changes: chokidar on the file's directory, not the
// file (FACTS.md: a watch on the file misses the second Kubernetes `..data`
// swap; a directory watch caught it, certbot's symlink switch and
// rename-over every time). Bursts of events are debounced into one call.
import { watch, type FSWatcher } from 'chokidar';
import { basename, dirname } from 'node:path';

/** Editors and `kubectl` write in several steps; wait for quiet before reloading. */
export const WATCH_DEBOUNCE_MS = 300;
/** How long start-up waits for the watcher's initial scan before serving without it. */
export const WATCH_READY_TIMEOUT_MS = 5_000;

export class ConfigWatcher {
  private readonly watcher: FSWatcher;
  private timer: NodeJS.Timeout | undefined;
  /** Resolves once the initial scan is done and changes are being seen. */
  readonly ready: Promise<void>;

  constructor(
    readonly file: string,
    private readonly onChange: () => void,
    onError: (err: unknown) => void,
  ) {
    const name = basename(file);
    this.watcher = watch(dirname(file), { depth: 0, ignoreInitial: true, followSymlinks: false });
    this.watcher.on('all', (_event, path) => {
      const changed = basename(path);
      // `..data` and `..2024_…` are the Kubernetes atomic-writer's swap entries.
      if (changed === name || changed.startsWith('..')) this.schedule();
    });
    this.watcher.on('error', onError);
    this.ready = new Promise((resolve) => this.watcher.once('ready', () => resolve()));
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onChange(), WATCH_DEBOUNCE_MS);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.watcher.close();
  }
}
