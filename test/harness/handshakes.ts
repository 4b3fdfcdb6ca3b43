/**
 * Holding TCP handshakes half-open inside a test's network namespace: an
 * nftables rule drops every client-to-server segment without SYN on a port,
 * so clients get their SYN-ACK (and believe they are connected) while the
 * server keeps each request in NEW_SYN_RECV, unanswered, until the rule is
 * removed: then the client's retransmissions, or the server's SYN-ACK
 * retransmit, finish the handshakes. This stands in for `tc netem delay`,
 * which this kernel lacks (FACTS.md), and reproduces the kernel selftest's
 * NEW_SYN_RECV case (migrate_reuseport.c drops the final ACK with XDP).
 *
 *   const hold = await HandshakeHold.start(ns, 8080);
 *   ...connect clients, reload...
 *   await hold.release();           // or hold.releaseAfter(2000)
 *
 * The rule lives in a table of its own (`inet ho_hold_<port>`), so several
 * holds on different ports coexist; destroying the namespace removes it too.
 */
import { spawnSync } from 'node:child_process';
import type { Netns } from './netns.js';

export class HandshakeHold {
  readonly port: number;
  readonly table: string;
  readonly since: number;
  private released = false;

  private constructor(
    private readonly ns: Netns,
    port: number,
  ) {
    this.port = port;
    this.table = `ho_hold_${port}`;
    this.since = Date.now();
  }

  /** Whether `nft` is installed (Debian: nftables); tests skip or fail with that reason. */
  static available(): boolean {
    return spawnSync('nft', ['--version'], { encoding: 'utf8' }).status === 0;
  }

  /** The ruleset text for `port` (exported for tests that apply it themselves). */
  static rules(port: number): string {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`bad port ${port}`);
    return [
      `table inet ho_hold_${port} {`,
      '  chain input {',
      '    type filter hook input priority filter; policy accept;',
      `    tcp dport ${port} tcp flags & syn == 0 counter drop`,
      '  }',
      '}',
      '',
    ].join('\n');
  }

  /** Installs the rule in `ns`; from now on handshakes to `port` stay half-open. */
  static async start(ns: Netns, port: number): Promise<HandshakeHold> {
    await ns.exec('nft', ['-f', '-'], { input: HandshakeHold.rules(port) });
    return new HandshakeHold(ns, port);
  }

  /** Segments the rule has dropped so far (the final ACKs and data it held back). */
  async dropped(): Promise<number> {
    const out = await this.ns.exec('nft', ['list', 'table', 'inet', this.table]);
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? NaN);
  }

  /** Removes the rule: held handshakes complete on the next retransmission. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.ns.exec('nft', ['delete', 'table', 'inet', this.table]);
  }

  /** Removes the rule once it has been in place for `ms` in total. */
  async releaseAfter(ms: number): Promise<void> {
    const left = this.since + ms - Date.now();
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    await this.release();
  }
}
