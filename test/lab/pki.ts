// Certificates the way kubeadm lays them out, made with the openssl CLI. RSA-2048 key generation costs
// ~0.25 s each on this machine and a 3-master lab needs ~45 keys, so keys come from a pool that is
// generated once and reused by every lab (<baseDir>/.keypool; the certificates themselves are always
// fresh, with this lab's names and addresses). Keys are PKCS#1 ("RSA PRIVATE KEY") like kubeadm writes.
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pool, run } from './util';

const MIN_CNF = '[req]\ndistinguished_name=dn\nprompt=no\n[dn]\n';

export class KeyPool {
  private next = 0;
  constructor(private readonly dir: string) {}

  /** Make sure at least `n` keys exist (first lab on a machine pays for them once). */
  async ensure(n: number): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const have = new Set(readdirSync(this.dir));
    const missing: number[] = [];
    for (let i = 0; i < n; i++) if (!have.has(`${i}.key`)) missing.push(i);
    await pool(missing, Math.max(2, availableParallelism()), async (i) => {
      const tmp = join(this.dir, `${i}.key.${process.pid}.part`);
      await run('openssl', ['genrsa', '-traditional', '-out', tmp, '2048']);
      renameSync(tmp, join(this.dir, `${i}.key`)); // atomic: a concurrent lab never reads half a key
    });
  }

  /** Copy the next unused pool key to `dest` (mode 0600). */
  take(dest: string): void {
    const src = join(this.dir, `${this.next++}.key`);
    if (!existsSync(src)) throw new Error(`key pool exhausted at ${src}; call ensure() with a larger count`);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(src, dest);
  }
}

export interface CertSpec {
  /** Output path without extension: writes <out>.crt and <out>.key */
  out: string;
  cn: string;
  o?: string[];
  /** Signing CA (path without extension); absent = self-signed CA. */
  ca?: string;
  usage?: 'server' | 'client' | 'both';
  dns?: string[];
  ips?: string[];
  days?: number;
}

export class Pki {
  private readonly cnf: string;
  constructor(
    readonly dir: string,
    private readonly keys: KeyPool,
  ) {
    mkdirSync(dir, { recursive: true });
    this.cnf = join(dir, 'openssl-min.cnf');
    writeFileSync(this.cnf, MIN_CNF);
  }

  /** Issue one certificate (a CA when spec.ca is absent). ~7 ms per call. */
  async cert(spec: CertSpec): Promise<void> {
    const key = `${spec.out}.key`;
    if (!existsSync(key)) this.keys.take(key);
    const subj = [...(spec.o ?? []).map((o) => `/O=${o}`), `/CN=${spec.cn}`].join('');
    const args = [
      'req',
      '-config',
      this.cnf,
      '-x509',
      '-new',
      '-key',
      key,
      '-subj',
      subj,
      '-sha256',
      '-out',
      `${spec.out}.crt`,
    ];
    if (!spec.ca) {
      // kubeadm CAs: 10 years, CA:TRUE, keyCertSign
      args.push('-days', String(spec.days ?? 3650));
      args.push('-addext', 'basicConstraints=critical,CA:TRUE');
      args.push('-addext', 'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign');
      args.push('-addext', 'subjectKeyIdentifier=hash');
    } else {
      args.push('-CA', `${spec.ca}.crt`, '-CAkey', `${spec.ca}.key`, '-days', String(spec.days ?? 365));
      args.push('-addext', 'basicConstraints=critical,CA:FALSE');
      args.push('-addext', 'keyUsage=critical,digitalSignature,keyEncipherment');
      const eku =
        spec.usage === 'server' ? 'serverAuth' : spec.usage === 'both' ? 'serverAuth,clientAuth' : 'clientAuth';
      args.push('-addext', `extendedKeyUsage=${eku}`);
      args.push('-addext', 'authorityKeyIdentifier=keyid');
      const sans = [...(spec.dns ?? []).map((d) => `DNS:${d}`), ...(spec.ips ?? []).map((i) => `IP:${i}`)];
      if (sans.length) args.push('-addext', `subjectAltName=${sans.join(',')}`);
    }
    await run('openssl', args);
  }

  /** The service-account key pair: sa.key (PKCS#1) + sa.pub (PKIX), no certificate. */
  async saKeyPair(outDir: string): Promise<void> {
    const key = join(outDir, 'sa.key');
    this.keys.take(key);
    await run('openssl', ['rsa', '-in', key, '-pubout', '-out', join(outDir, 'sa.pub')]);
  }
}
