// Packs the lab's cached etcd binaries (test/lab/binaries.ts) the way etcd publishes a release, so
// tests can feed the app's "install etcd tools from an official archive" path without internet:
//   etcd-v3.6.16-linux-amd64.tar.gz  with top folder etcd-v3.6.16-linux-amd64/ {etcd, etcdctl, etcdutl, README.md}
//   SHA256SUMS                        "<sha256>  etcd-v3.6.16-linux-amd64.tar.gz"
// (etcdutl only exists from 3.5 on, so a 3.4 archive has none — like the real 3.4 releases.)
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultEtcdMinor, etcdRelease, etcdTools, type EtcdMinor } from './binaries';
import { run } from './util';

export interface EtcdRelease {
  version: string; // "3.6.16"
  archive: string; // absolute path of the .tar.gz
  sha256: string;
  sha256sums: string; // path of SHA256SUMS
  binaries: string[]; // what the archive holds: etcd, etcdctl (+ etcdutl from 3.5 on)
}

export async function etcdVersion(bin: string): Promise<string> {
  const out = (await run(bin, ['--version'])).stdout;
  const m = /etcd Version: (\d+\.\d+\.\d+)/.exec(out);
  if (!m) throw new Error(`cannot read etcd version from: ${out}`);
  return m[1];
}

/** An official-looking release archive of the lab's etcd of `minor` (default: the lab's default). */
export async function packEtcdRelease(outDir: string, opts: { minor?: EtcdMinor } = {}): Promise<EtcdRelease> {
  const rel = etcdRelease(opts.minor ?? defaultEtcdMinor());
  const version = await etcdVersion(join(rel.dir, 'etcd'));
  const name = `etcd-v${version}-linux-amd64`;
  const stage = join(outDir, `.stage-${process.pid}`);
  const top = join(stage, name);
  mkdirSync(top, { recursive: true });
  const binaries = etcdTools(rel.dir);
  for (const b of binaries) copyFileSync(join(rel.dir, b), join(top, b));
  writeFileSync(join(top, 'README.md'), `# etcd v${version}\n\nRepacked from the Kube Etcd Switch test lab's cache.\n`);
  const archive = join(outDir, `${name}.tar.gz`);
  await run('tar', ['-C', stage, '--owner=0', '--group=0', '-czf', archive, name]);
  rmSync(stage, { recursive: true, force: true });
  const sha256 = createHash('sha256').update(readFileSync(archive)).digest('hex');
  const sha256sums = join(outDir, 'SHA256SUMS');
  writeFileSync(sha256sums, `${sha256}  ${name}.tar.gz\n`);
  return { version, archive, sha256, sha256sums, binaries };
}
