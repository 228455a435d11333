// etcd tools for hosts that lack them (kubeadm runs etcd from an image, so masters often have no
// etcdctl/etcdutl): official release archives kept in a desktop cache, sha256 checked, then
// uploaded and installed by install-etcd-tools.sh. Works air-gapped: the user can pick an
// archive file; with network, the app downloads it with the release's SHA256SUMS.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { basename, join, posix } from 'node:path';
import * as tar from 'tar';
import type { ClusterNode, ToolArchive } from '@shared/domain';
import type { Log } from '../cluster/ops';
import { kesValues } from '../cluster/ops';
import { EtcdOpError, transferDir, type EtcdDeps } from './deps';

const ARCHIVE_RE = /^etcd-v(\d+\.\d+\.\d+)-linux-(amd64|arm64)\.tar\.gz$/;

export type CachedArchive = ToolArchive;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

export class ToolCache {
  readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, 'cache', 'etcd');
  }

  /** Validate and copy an archive into the cache (name pattern, sha256, binaries inside). */
  async add(src: string, expectedSha256?: string): Promise<CachedArchive> {
    const name = basename(src);
    const m = ARCHIVE_RE.exec(name);
    if (!m)
      throw new EtcdOpError(
        'INVALID_INPUT',
        `Not an etcd release archive name (etcd-vX.Y.Z-linux-amd64.tar.gz): ${name}`,
      );
    const sha = await sha256File(src);
    if (expectedSha256 && sha !== expectedSha256.toLowerCase())
      throw new EtcdOpError('ARCHIVE_INVALID', `sha256 of ${name} is ${sha}, expected ${expectedSha256}`);
    const binaries: string[] = [];
    await tar.list({
      file: src,
      onReadEntry: (e) => {
        const parts = e.path.split('/');
        if (
          parts.length === 2 &&
          parts[0] === `etcd-v${m[1]}-linux-${m[2]}` &&
          ['etcd', 'etcdctl', 'etcdutl'].includes(parts[1])
        )
          binaries.push(parts[1]);
      },
    });
    if (!binaries.includes('etcdctl'))
      throw new EtcdOpError('ARCHIVE_INVALID', `${name} holds no etcd-v${m[1]}-linux-${m[2]}/etcdctl`);
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const dest = join(this.dir, name);
    await fs.copyFile(src, `${dest}.part`);
    await fs.rename(`${dest}.part`, dest);
    await fs.writeFile(`${dest}.sha256`, `${sha}  ${name}\n`);
    return { file: dest, name, version: m[1], arch: m[2], sha256: sha, binaries: binaries.sort() };
  }

  async list(): Promise<CachedArchive[]> {
    const out: CachedArchive[] = [];
    for (const f of await fs.readdir(this.dir).catch(() => [] as string[])) {
      const m = ARCHIVE_RE.exec(f);
      if (!m) continue;
      const sha = (await fs.readFile(join(this.dir, `${f}.sha256`), 'utf8').catch(() => '')).split(' ')[0];
      if (!sha) continue;
      out.push({ file: join(this.dir, f), name: f, version: m[1], arch: m[2], sha256: sha, binaries: [] });
    }
    return out.sort((a, b) => b.version.localeCompare(a.version, undefined, { numeric: true }));
  }

  /**
   * Download `etcd-vX.Y.Z-linux-ARCH.tar.gz` and SHA256SUMS from `baseUrl` (default: the etcd
   * GitHub releases) and add it to the cache once the checksum matches.
   */
  async download(
    version: string,
    opts: { arch?: string; baseUrl?: string; signal?: AbortSignal } = {},
  ): Promise<CachedArchive> {
    if (!/^\d+\.\d+\.\d+$/.test(version)) throw new EtcdOpError('INVALID_INPUT', `Bad etcd version: ${version}`);
    const arch = opts.arch ?? 'amd64';
    const base = (opts.baseUrl ?? 'https://github.com/etcd-io/etcd/releases/download').replace(/\/$/, '');
    const name = `etcd-v${version}-linux-${arch}.tar.gz`;
    const sums = await fetch(`${base}/v${version}/SHA256SUMS`, { signal: opts.signal });
    if (!sums.ok) throw new EtcdOpError('DOWNLOAD_FAILED', `SHA256SUMS: HTTP ${sums.status}`);
    const line = (await sums.text()).split('\n').find((l) => l.trim().endsWith(name));
    if (!line) throw new EtcdOpError('DOWNLOAD_FAILED', `SHA256SUMS has no entry for ${name}`);
    const res = await fetch(`${base}/v${version}/${name}`, { signal: opts.signal });
    if (!res.ok || !res.body) throw new EtcdOpError('DOWNLOAD_FAILED', `${name}: HTTP ${res.status}`);
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmpDir = await fs.mkdtemp(join(this.dir, '.dl-'));
    const tmp = join(tmpDir, name);
    try {
      await fs.writeFile(tmp, Buffer.from(await res.arrayBuffer()));
      return await this.add(tmp, line.split(/\s+/)[0]);
    } finally {
      await fs.rm(tmpDir, { recursive: true, force: true });
    }
  }
}

/** Upload the archive to a node and install its binaries into /usr/local/bin. */
export async function installTools(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  archive: CachedArchive,
  log?: Log,
): Promise<{ installed: string[]; version: string }> {
  const { dir } = await transferDir(deps, clusterId, node, log);
  const remote = posix.join(dir, archive.name);
  log?.('info', `upload ${archive.name} to ${node.name}`);
  const t = await deps.pool.upload(deps.targetOf(clusterId, node.id), archive.file, remote);
  if (t.sha256 !== archive.sha256) throw new EtcdOpError('ARCHIVE_INVALID', `Upload to ${node.name} corrupted`);
  const res = await deps.ops.run(clusterId, node.id, 'install-etcd-tools.sh', [remote, archive.sha256], { log });
  const v = kesValues(res.stdout);
  return {
    installed: (v.get('INSTALLED') ?? '').split(' ').filter(Boolean),
    version: v.get('VERSION') ?? archive.version,
  };
}
