// Scenario 4: TLS certificate rotation under load. Every second a new
// certificate and key are renamed over the served files (the certificate
// first, the key a moment later, as renewals write them) while the bench's
// client keeps HTTPS keep-alive connections and new handshakes going.
// handover picks the pair up by itself once the build watches certificate
// files (detected from the config schema); until then, and for the other
// contenders (whose servers read the files at start), a reload follows each
// swap. At the end a new connection must be served the last certificate.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, type Contender, type TlsFiles } from '../contenders/contender.js';
import { Handover } from '../contenders/handover.js';
import type { ContenderId } from '../contenders/index.js';
import { push, type TlsResults } from '../lib/results.js';
import type { Ctx } from './context.js';
import { clientFailures, clientWhile, reloadEverySecond } from './series.js';

const CONTENDERS: readonly ContenderId[] = ['handover-migrate', 'handover-inherit', 'cluster-none', 'cluster-rr', 'pm2'];
const PAIRS = 2;
const WATCHED_RELOAD_TIMEOUT_MS = 10_000;
const PROBE = fileURLToPath(new URL('../lib/probe.mjs', import.meta.url));

/** Whether this build reloads on certificate changes by itself: its config schema says so. */
export function certificateWatch(): boolean {
  const file = join(ROOT, 'config/handover.schema.json');
  if (!existsSync(file)) return false;
  const schema = JSON.parse(readFileSync(file, 'utf8')) as {
    properties?: { listen?: { items?: { properties?: { tls?: { properties?: Record<string, unknown> } } } }; reload?: { properties?: { watch?: { description?: string } } } };
  };
  const tls = schema.properties?.listen?.items?.properties?.tls?.properties ?? {};
  const watch = schema.properties?.reload?.properties?.watch?.description ?? '';
  return 'rotate' in tls || /\b(tls|certificate)/i.test(watch);
}

function makePairs(dir: string): TlsFiles[] {
  mkdirSync(dir, { recursive: true });
  return Array.from({ length: PAIRS }, (_, i) => {
    const cert = join(dir, `pair${i}.crt`);
    const key = join(dir, `pair${i}.key`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=localhost/O=handover bench ${i}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    return { cert, key };
  });
}

/** Renames a copy of `from` over `to`: the certificate first, then the key. */
function swapIn(from: TlsFiles, to: TlsFiles): void {
  for (const part of ['cert', 'key'] as const) {
    copyFileSync(from[part], `${to[part]}.new`);
    renameSync(`${to[part]}.new`, to[part]);
  }
}

export async function tlsRotation(ctx: Ctx): Promise<void> {
  const watch = certificateWatch();
  const results: TlsResults = {
    mode: watch ? 'watch' : 'manual',
    note: watch
      ? 'handover watches the certificate files (reload.watch); the others reload after each swap'
      : 'this build does not watch certificate files yet (tool issue 8): handover is reloaded with `handover reload` after each swap, like the others',
    runs: {},
  };
  ctx.results.tls = results;
  const pairs = makePairs(join(ctx.box.dir, 'certs'));
  const ids = CONTENDERS.filter((id) => ctx.o.contenders.includes(id));
  for (let repeat = 0; repeat < ctx.o.repeats; repeat++) {
    for (const id of ctx.order(ids, repeat)) {
      const served: TlsFiles = { cert: join(ctx.box.dir, `tls-${id}-${repeat}.crt`), key: join(ctx.box.dir, `tls-${id}-${repeat}.key`) };
      swapIn(pairs[0]!, served);
      const c = ctx.contender(id, { tls: served, watchTls: watch && id.startsWith('handover') });
      try {
        await c.start();
        let n = 0;
        const watched = watch && c instanceof Handover ? c : undefined;
        const kinds = await clientWhile(ctx, c.options.port, ctx.o.d.seriesS, true, (until) =>
          watched ? rotateByWatch(ctx, watched, pairs, served, until) : reloadEverySecond(ctx, c, until, () => swapIn(pairs[++n % PAIRS]!, served)),
        );
        await ctx.note(c, `tls ${id} #${repeat + 1}`);
        const last = new X509Certificate(readFileSync(served.cert)).fingerprint256;
        const servesLast = (await fingerprint(ctx, c)) === last;
        push(results.runs, id, {
          repeat,
          rotations: kinds.reloads,
          rotationsFailed: kinds.marks.filter((m) => !m.ok).length,
          how: watched ? 'file swap (watched)' : `file swap + ${c.reloadHow ?? ''}`,
          servesLast,
          kinds,
        });
        ctx.log(`  ${id} #${repeat + 1}: ${kinds.reloads} rotations, ${clientFailures(kinds)} failed requests, serves the last certificate: ${servesLast}`);
      } catch (err) {
        ctx.results.errors.push(`tls ${id} #${repeat + 1}: ${String(err)}`);
        ctx.log(`  ${id}: FAILED ${String(err).split('\n')[0]}`);
      } finally {
        await c.stop();
      }
    }
  }
}

/** Swaps a pair in every second and waits for the master's own reload (trigger tls) each time. */
async function rotateByWatch(ctx: Ctx, c: Handover, pairs: TlsFiles[], served: TlsFiles, until: number): Promise<Awaited<ReturnType<typeof reloadEverySecond>>> {
  const marks = [];
  let n = 0;
  let failed = 0;
  while (Date.now() + ctx.o.reloadEveryMs < until) {
    const at = Date.now();
    const logged = c.nextLoggedReload(WATCHED_RELOAD_TIMEOUT_MS);
    swapIn(pairs[++n % PAIRS]!, served);
    let ok = false;
    try {
      ok = (await logged)['result'] === 'ok';
    } catch {
      ok = false;
    }
    if (!ok) failed++;
    marks.push({ at, end: Date.now(), ok });
    const rest = at + ctx.o.reloadEveryMs - Date.now();
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  }
  return { marks, commandCpuMs: 0, failed, newPids: 0, startupMs: 0 };
}

async function fingerprint(ctx: Ctx, c: Contender): Promise<string> {
  const r = await ctx.box.run('load', process.execPath, [PROBE, String(c.options.port), 'fingerprint', '5000'], 10_000);
  return r.stdout.trim();
}
