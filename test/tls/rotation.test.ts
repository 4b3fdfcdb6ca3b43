// Certificate rotation under load, against the real kernel: a master in a
// network namespace of its own (tcp_migrate_req=1, so every rotation is a new
// generation whose old listeners are shut down at once and their queues
// migrated), serving three TLS addresses whose files are replaced the ways
// real machines replace them (test/tls/layouts.ts). The load clients
// (test/harness/tls-load.mjs) run inside the namespace and report which
// certificate serial answered every request.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { HELLO, MasterProcess, type LogLine } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';
import { startTlsLoad, tlsErrors, type TlsLoadHandle, type TlsLoadSummary } from '../harness/tls-load.js';
import { CertStore, type Style } from './layouts.js';
import { issue, makeCa, serialText } from './pki.js';

/**
 * The issue's bound: the new certificate answers within this of the swap,
 * with a reload (spawning the new workers) of up to RELOAD_ALLOWANCE_MS. On a
 * machine so busy that the reload itself takes longer (the reload's cost, not
 * the rotation's: bench/ measures it), the excess is added to the bound and
 * the watch's own latency is checked on its own.
 */
const SWAP_TO_SERVED_MS = 2_000;
const RELOAD_ALLOWANCE_MS = 1_000;
/** From the last file in place to the reload being requested: the debounce and the check of the files. */
const SWAP_TO_RELOAD_MS = 1_000;

const ca = makeCa();
const dir = mkdtempSync(join(tmpdir(), 'handover-tlsrot-'));
const caFile = join(dir, 'ca.pem');
writeFileSync(caFile, ca.certPem);
let nextSerial = 0x5000;
const leaf = (): ReturnType<typeof issue> => issue('localhost', { serial: ++nextSerial, issuer: ca, names: ['localhost', '127.0.0.1'] });

const PORTS = { rename: 8443, certbot: 8444, kubernetes: 8445 } as const;
const url = (port: number): string => `https://127.0.0.1:${port}/`;

interface Served {
  ns: Netns;
  master: MasterProcess;
  stores: Record<keyof typeof PORTS, CertStore>;
}

let shared: Promise<Served> | undefined;
/** One master for the file, started by the first test that runs (they all need root). */
function serve(): Promise<Served> {
  shared ??= (async () => {
    const stores = {
      rename: new CertStore(join(dir, 'plain'), 'rename', leaf()),
      certbot: new CertStore(join(dir, 'letsencrypt'), 'certbot', leaf()),
      kubernetes: new CertStore(join(dir, 'secret'), 'kubernetes', leaf()),
    };
    const listen = (Object.keys(PORTS) as (keyof typeof PORTS)[])
      .map((k) => `  - address: 127.0.0.1:${PORTS[k]}\n    http2: true\n    tls: { cert: ${stores[k].cert}, key: ${stores[k].key} }\n`)
      .join('');
    const yaml = `app: ${HELLO}\nworkers: 2\nlisten:\n${listen}reload: { strategy: auto, drain_timeout: 5s, settle: 0s, watch: true }\ntls: { pair_wait: 5s }\n`;
    const ns = await Netns.create('tlsrot');
    await ns.sysctl('net.ipv4.tcp_migrate_req', 1);
    const master = MasterProcess.start({ yaml, ns });
    await master.serving();
    return { ns, master, stores };
  })();
  return shared;
}

after(async () => {
  const s = await shared?.catch(() => undefined);
  await s?.master.dispose(15_000);
  await s?.ns.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const reportsOf = (master: MasterProcess, from: number): Record<string, unknown>[] =>
  master.logs.slice(from).filter((l: LogLine) => typeof l.msg === 'string' && l.msg.startsWith('reload ')).map((l) => l['reload'] as Record<string, unknown>);

const brief = (s: TlsLoadSummary): string =>
  JSON.stringify({ requests: s.requests, ok: s.ok, errors: s.errors, retried: s.retried, goaways: s.goaways, protocols: s.protocols, serials: Object.keys(s.serials).length });

function assertClean(s: TlsLoadSummary, what: string): void {
  assert.equal(tlsErrors(s), 0, `${what}: no handshake or request failed: ${brief(s)}`);
  assert.equal(s.ok, s.requests, `${what}: every request a 200: ${brief(s)}`);
  assert.ok(s.requests > 0, `${what}: requests ran`);
}

interface Rotation {
  /** swap -> the new serial first answered */
  servedMs: number;
  /** swap -> the reload requested (the report's startedAt) */
  watchMs: number;
  /** the reload itself: request -> old listeners shut down */
  reloadMs: number;
}

/** Replaces the pair, then waits until `load` is answered with its serial and the reload is reported. */
async function rotate(master: MasterProcess, store: CertStore, load: TlsLoadHandle, style: Style = store.style, timeoutMs = 10_000): Promise<Rotation> {
  const pair = leaf();
  const from = master.logs.length;
  await store.replace(pair, 0, style);
  const swapped = Date.now();
  const served = await load.firstSeen(pair.serial, timeoutMs);
  const line = await master.waitForLog(isTlsReport, 10_000, from);
  const report = line['reload'] as { startedAt: string; durationMs: number };
  return { servedMs: served - swapped, watchMs: Date.parse(report.startedAt) - swapped, reloadMs: report.durationMs };
}

const isTlsReport = (l: LogLine): boolean =>
  typeof l.msg === 'string' && l.msg.startsWith('reload ') && (l['reload'] as { trigger?: string } | undefined)?.trigger === 'tls';

describe('certificate rotation under load', () => {
  it('each replacement style: the new serial is served within 2 s of the swap, and no handshake or request fails', { timeout: 90_000 }, async (t: TestContext) => {
    if (!needsRoot(t)) return;
    const { ns, master, stores } = await serve();
    const from = master.logs.length;
    // Two request loops per address, in one client process.
    const addresses = Object.keys(PORTS) as (keyof typeof PORTS)[];
    const load = startTlsLoad(ns, { url: addresses.map((k) => url(PORTS[k])), ca: caFile, mode: 'h1', concurrency: 6, duration: 60_000 });
    const took: Record<string, Rotation> = {};
    let summary: TlsLoadSummary | undefined;
    try {
      // Every address answered before the first swap.
      await Promise.all(addresses.map((k) => load.firstSeen(stores[k].current.serial, 20_000)));
      const steps: [keyof typeof PORTS, Style][] = [['rename', 'rename'], ['certbot', 'certbot'], ['kubernetes', 'kubernetes'], ['rename', 'in-place']];
      for (const [address, style] of steps) {
        const r = await rotate(master, stores[address], load, style);
        took[style] = r;
        const bound = SWAP_TO_SERVED_MS + Math.max(0, r.reloadMs - RELOAD_ALLOWANCE_MS);
        assert.ok(r.watchMs <= SWAP_TO_RELOAD_MS, `${style}: the reload was requested ${r.watchMs} ms after the swap (bound ${SWAP_TO_RELOAD_MS} ms)`);
        assert.ok(r.servedMs <= bound, `${style}: new serial served ${r.servedMs} ms after the swap (bound ${bound} ms; the reload took ${r.reloadMs} ms)`);
      }
    } finally {
      summary = await load.stop();
      t.diagnostic(`swap to served (ms): ${JSON.stringify(took)}; load: ${brief(summary)}`);
    }
    assertClean(summary, 'h1 on three addresses');
    const reports = reportsOf(master, from);
    assert.equal(reports.length, 4, `one reload per swap: ${JSON.stringify(reports.map((r) => r['trigger']))}`);
    for (const r of reports) {
      assert.equal(r['trigger'], 'tls');
      assert.equal(r['result'], 'ok', JSON.stringify(r));
      assert.equal(r['strategy'], 'migrate');
      assert.deepEqual((r['listeners'] as { action: string }[]).map((l) => l.action), ['handoff', 'handoff', 'handoff'], 'a certificate change keeps the listener spec');
      assert.equal((r['tls'] as { rotate: string }).rotate, 'new-generation');
    }
  });

  it('HTTP/1.1 and HTTP/2 on one listener, both served across ten rotations with zero failed requests', { timeout: 90_000 }, async (t: TestContext) => {
    if (!needsRoot(t)) return;
    const { ns, master, stores } = await serve();
    const target = { url: url(PORTS.rename), ca: caFile, duration: 80_000 };
    const h1 = startTlsLoad(ns, { ...target, mode: 'h1', concurrency: 2 });
    const keep = startTlsLoad(ns, { ...target, mode: 'h1-keepalive', concurrency: 2 });
    const h2 = startTlsLoad(ns, { ...target, mode: 'h2', concurrency: 6, slowEvery: 8, slowMs: 400 });
    const took: Rotation[] = [];
    let summaries: TlsLoadSummary[] = [];
    try {
      await Promise.all([h1, keep, h2].map((l) => l.firstSeen(stores.rename.current.serial, 20_000)));
      for (let i = 0; i < 10; i++) {
        took.push(await rotate(master, stores.rename, h1));
        // h2 sessions move once GOAWAY sends them to the new generation.
        await h2.firstSeen(serialText(nextSerial), 10_000);
      }
    } finally {
      summaries = await Promise.all([h1.stop(), keep.stop(), h2.stop()]);
      t.diagnostic(`swap to served (ms): ${took.map((r) => r.servedMs).join(', ')}; reloads (ms): ${took.map((r) => r.reloadMs).join(', ')}; h1 ${brief(summaries[0]!)}; keep-alive ${brief(summaries[1]!)}; h2 ${brief(summaries[2]!)}`);
    }
    const [s1, sk, s2] = summaries as [TlsLoadSummary, TlsLoadSummary, TlsLoadSummary];
    assertClean(s1, 'h1');
    assertClean(sk, 'h1 keep-alive');
    assertClean(s2, 'h2');
    assert.deepEqual(Object.keys(s1.protocols), ['http/1.1']);
    assert.deepEqual(Object.keys(s2.protocols), ['h2']);
    assert.ok(Object.keys(s2.serials).length >= 10, `h2 was answered by every rotation's certificate: ${Object.keys(s2.serials).length}`);
    assert.ok(s2.goaways >= 10, `each rotation drained the h2 sessions with GOAWAY (${s2.goaways})`);
    assert.ok(s2.slow.ok === s2.slow.sent && s2.slow.sent > 0, `slow h2 streams all completed: ${JSON.stringify(s2.slow)}`);
  });

  it('HTTP/2 streams in flight at a rotation complete; their session is told GOAWAY', { timeout: 30_000 }, async (t: TestContext) => {
    if (!needsRoot(t)) return;
    const { ns, stores } = await serve();
    const held = startTlsLoad(ns, { url: url(PORTS.rename), ca: caFile, mode: 'h2-hold', streams: 6, slowMs: 3000, duration: 20_000 });
    await held.sent;
    await stores.rename.replace(leaf());
    const s = await held.done;
    t.diagnostic(brief(s));
    assert.equal(s.slow.ok, 6, `all six streams answered 200: ${brief(s)}`);
    assert.equal(tlsErrors(s), 0);
    assert.equal(s.retried, 0, 'none was refused');
    assert.ok(s.goaways >= 1, 'the old worker sent GOAWAY while they ran');
  });
});
