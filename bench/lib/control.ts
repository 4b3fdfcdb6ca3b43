// One request on a handover master's control socket (newline-delimited
// JSON, one request per connection), for polling status between reloads
// without paying a CLI process each time.
import { connect } from 'node:net';

const ANSWER_TIMEOUT_MS = 10_000;

export function controlRequest(socket: string, body: object): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    let buffer = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`control socket ${socket}: no answer within ${ANSWER_TIMEOUT_MS} ms`));
    }, ANSWER_TIMEOUT_MS);
    conn.setEncoding('utf8');
    conn.once('connect', () => conn.write(`${JSON.stringify(body)}\n`));
    conn.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.destroy();
      try {
        resolve(JSON.parse(buffer.slice(0, nl)) as { ok: boolean; result?: unknown; error?: string });
      } catch (err) {
        reject(err);
      }
    });
    conn.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`control socket ${socket}: ${err.message}`));
    });
  });
}

/** Polls `status` until only one generation is left (the previous one drained), or the deadline. */
export async function drained(socket: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await controlRequest(socket, { cmd: 'status' });
    const generations = (r.result as { generations?: unknown[] } | undefined)?.generations ?? [];
    if (generations.length <= 1) return true;
    await new Promise((res) => setTimeout(res, 20));
  }
  return false;
}
