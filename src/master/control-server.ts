// The control socket: a Unix stream socket, mode 0600 in a 0700 directory.
// One JSON request line per connection, one JSON answer line. A `stop`
// caller's connection stays open until the master exits, so `handover stop`
// can wait for the end.
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { controlDir, ensureControlDir } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { MAX_CONTROL_LINE, type ControlResponse, type ParsedControlRequest } from '../protocol/control.js';
import { controlRequestSchema } from '../protocol/control-request.js';

export type Reply = (response: ControlResponse, options?: { keepOpen?: boolean }) => void;

/** How long a connected client may take to send its request line. */
const REQUEST_TIMEOUT_MS = 5_000;

export class ControlSocketInUse extends Error {
  override name = 'ControlSocketInUse';
}

export class ControlServer {
  private server: Server | undefined;
  private readonly held = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly log: Logger,
    private readonly onRequest: (request: ParsedControlRequest, reply: Reply) => void,
  ) {}

  async listen(): Promise<void> {
    const dir = dirname(this.path);
    // The shared fallback directories (/tmp/handover-<uid>, $XDG_RUNTIME_DIR/handover)
    // must be ours and private; a directory the user chose, or systemd's
    // RuntimeDirectory, is theirs to set up: the socket itself is 0600.
    if (dir === controlDir() && !process.env['RUNTIME_DIRECTORY']) ensureControlDir(dir);
    else mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (await isAnswering(this.path)) {
      throw new ControlSocketInUse(
        `another handover master is already running with control socket ${this.path} (try: handover status)`,
      );
    }
    try {
      unlinkSync(this.path); // a stale socket from a master that died
    } catch {
      /* none there */
    }
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  private accept(socket: Socket): void {
    let buffer = '';
    let answered = false;
    socket.setEncoding('utf8');
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => {
      if (!answered) socket.destroy();
    });
    const reply: Reply = (response, options = {}) => {
      if (answered) return;
      answered = true;
      socket.setTimeout(0);
      socket.write(`${JSON.stringify(response)}\n`);
      if (options.keepOpen) this.held.add(socket);
      else socket.end();
    };
    socket.on('data', (chunk: string) => {
      if (answered) return;
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0) {
        if (buffer.length > MAX_CONTROL_LINE) reply({ ok: false, error: 'request too long', code: 'EINVAL' });
        return;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(buffer.slice(0, newline));
      } catch {
        return reply({ ok: false, error: 'request is not JSON', code: 'EINVAL' });
      }
      // Read: from here the answer may take as long as a reload (or its drain).
      socket.setTimeout(0);
      const parsed = controlRequestSchema.safeParse(raw);
      if (!parsed.success) return reply({ ok: false, error: `invalid request: ${parsed.error.message}`, code: 'EINVAL' });
      this.onRequest(parsed.data, reply);
    });
    socket.on('error', (err) => this.log.debug({ err }, 'control connection error'));
    socket.on('close', () => this.held.delete(socket));
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
    for (const socket of this.held) socket.end();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function isAnswering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
