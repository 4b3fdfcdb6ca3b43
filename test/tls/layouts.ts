// The ways certificates get replaced on real machines, reproduced on disk:
//   rename      write new files beside the old, rename each over (deploy scripts, cert-manager's sidecars)
//   in-place    truncate and rewrite each file (cp, an editor)
//   certbot     live/NAME/*.pem are relative symlinks into archive/NAME/*N.pem; a renewal writes
//               *N+1.pem and relinks cert, privkey, chain, fullchain one after another (unlink, symlink)
//   kubernetes  a mounted Secret: tls.crt -> ..data/tls.crt, ..data -> ..2024_01_01_…; an update writes a
//               new timestamped directory, points ..data_tmp at it, renames ..data_tmp over ..data, and
//               removes the old directory (the kubelet's atomic writer)
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Issued } from './pki.js';

export type Style = 'rename' | 'in-place' | 'certbot' | 'kubernetes';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class CertStore {
  /** The paths the configuration names. */
  readonly cert: string;
  readonly key: string;
  /** The pair last put in place. */
  current: Issued;
  private version = 0;

  constructor(
    readonly dir: string,
    readonly style: Style,
    first: Issued,
  ) {
    this.current = first;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (style === 'certbot') {
      this.cert = join(dir, 'live/example/fullchain.pem');
      this.key = join(dir, 'live/example/privkey.pem');
      mkdirSync(join(dir, 'live/example'), { recursive: true, mode: 0o755 });
      mkdirSync(join(dir, 'archive/example'), { recursive: true, mode: 0o755 });
    } else if (style === 'kubernetes') {
      this.cert = join(dir, 'tls.crt');
      this.key = join(dir, 'tls.key');
    } else {
      this.cert = join(dir, 'tls.crt');
      this.key = join(dir, 'tls.key');
    }
    this.initial(first);
  }

  private initial(pair: Issued): void {
    this.version = 1;
    if (this.style === 'certbot') {
      this.writeArchive(pair, 1);
      for (const kind of CERTBOT_KINDS) symlinkSync(`../../archive/example/${kind}1.pem`, join(this.dir, `live/example/${kind}.pem`));
    } else if (this.style === 'kubernetes') {
      this.writeSecret(pair, 1);
      symlinkSync(secretDir(1), join(this.dir, '..data'));
      symlinkSync('..data/tls.crt', this.cert);
      symlinkSync('..data/tls.key', this.key);
    } else {
      writeFileSync(this.cert, pair.certPem);
      writeFileSync(this.key, pair.keyPem);
    }
  }

  /**
   * Replaces the pair in this store's style (a rename store's files may also
   * be rewritten `in-place`); `gapMs` between the certificate and the key.
   */
  async replace(pair: Issued, gapMs = 0, style: Style = this.style): Promise<void> {
    const v = ++this.version;
    this.current = pair;
    switch (style) {
      case 'rename':
        writeFileSync(`${this.cert}.new`, pair.certPem);
        writeFileSync(`${this.key}.new`, pair.keyPem);
        renameSync(`${this.cert}.new`, this.cert);
        if (gapMs) await sleep(gapMs);
        renameSync(`${this.key}.new`, this.key);
        return;
      case 'in-place':
        writeFileSync(this.cert, pair.certPem);
        if (gapMs) await sleep(gapMs);
        writeFileSync(this.key, pair.keyPem);
        return;
      case 'certbot':
        this.writeArchive(pair, v);
        for (const kind of CERTBOT_KINDS) {
          const link = join(this.dir, `live/example/${kind}.pem`);
          unlinkSync(link);
          symlinkSync(`../../archive/example/${kind}${v}.pem`, link);
          if (gapMs && kind === 'cert') await sleep(gapMs);
        }
        return;
      case 'kubernetes': {
        this.writeSecret(pair, v);
        const tmp = join(this.dir, '..data_tmp');
        symlinkSync(secretDir(v), tmp);
        renameSync(tmp, join(this.dir, '..data'));
        rmSync(join(this.dir, secretDir(v - 1)), { recursive: true, force: true });
        return;
      }
    }
  }

  private writeArchive(pair: Issued, v: number): void {
    const a = join(this.dir, 'archive/example');
    writeFileSync(join(a, `cert${v}.pem`), pair.certPem);
    writeFileSync(join(a, `chain${v}.pem`), '');
    writeFileSync(join(a, `fullchain${v}.pem`), pair.certPem);
    writeFileSync(join(a, `privkey${v}.pem`), pair.keyPem, { mode: 0o600 });
  }

  private writeSecret(pair: Issued, v: number): void {
    const d = join(this.dir, secretDir(v));
    mkdirSync(d, { mode: 0o755 });
    writeFileSync(join(d, 'tls.crt'), pair.certPem);
    writeFileSync(join(d, 'tls.key'), pair.keyPem);
  }
}

/** certbot's order in update_all_links_to(). */
const CERTBOT_KINDS = ['cert', 'privkey', 'chain', 'fullchain'] as const;

const secretDir = (v: number): string => `..2024_01_01_00_00_${String(v).padStart(2, '0')}.${100000 + v}`;
