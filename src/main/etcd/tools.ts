// etcd tools for hosts that lack them (kubeadm runs etcd from an image, so masters often have no
// etcdctl/etcdutl): official release archives kept in a desktop cache, sha256 checked, then
// uploaded and installed by install-etcd-tools.sh. Works air-gapped: the user can pick an
// archive file; with network, the app downloads it over https and checks it against the sha256
// pinned for that release (release-download.ts) or, for another release, the one the user gives.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { basename, join, posix } from 'node:path';
import * as tar from 'tar';
import type { ClusterNode, ToolArchive, ToolPaths } from '@shared/domain';
import type { Log } from '../cluster/ops';
import { kesValues } from '../cluster/ops';
import { EtcdOpError, transferDir, type EtcdDeps } from './deps';
import {
  archiveEntryProblem,
  checkHttpsUrl,
  DEFAULT_RELEASE_BASE,
  expectedSha256,
  fetchToFile,
  PINNED_SHA256,
  type FetchOptions,
} from './release-download';

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
    const top = `etcd-v${m[1]}-linux-${m[2]}`;
    const problems: string[] = [];
    await tar.list({
      file: src,
      strict: true,
      onReadEntry: (e) => {
        // Only regular files and folders under the release's own folder (the node extracts it as root).
        const problem = archiveEntryProblem({ path: e.path, type: e.type }, top);
        if (problem) problems.push(problem);
        const parts = e.path.split('/');
        if (
          parts.length === 2 &&
          parts[0] === `etcd-v${m[1]}-linux-${m[2]}` &&
          ['etcd', 'etcdctl', 'etcdutl'].includes(parts[1])
        )
          binaries.push(parts[1]);
      },
    });
    if (problems.length)
      throw new EtcdOpError('ARCHIVE_INVALID', `${name} is refused: ${problems.slice(0, 3).join('; ')}`);
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
   * Download `etcd-vX.Y.Z-linux-ARCH.tar.gz` from `baseUrl` (default: the etcd GitHub releases;
   * https only, redirects too) straight to disk, and add it to the cache once its sha256 is the
   * pinned one (PINNED_SHA256) or, for a release the app does not know, the one the user gave.
   */
  async download(
    version: string,
    opts: FetchOptions & {
      arch?: string;
      baseUrl?: string;
      sha256?: string;
      /** For tests: the table of known checksums. */
      pinned?: Readonly<Record<string, string>>;
    } = {},
  ): Promise<CachedArchive> {
    if (!/^\d+\.\d+\.\d+$/.test(version)) throw new EtcdOpError('INVALID_INPUT', `Bad etcd version: ${version}`);
    const arch = opts.arch ?? 'amd64';
    const name = `etcd-v${version}-linux-${arch}.tar.gz`;
    if (!ARCHIVE_RE.test(name))
      throw new EtcdOpError('INVALID_INPUT', `etcd publishes no ${arch} archive this app installs`);
    const want = expectedSha256(name, opts.sha256, opts.pinned ?? PINNED_SHA256);
    const base = checkHttpsUrl(opts.baseUrl ?? DEFAULT_RELEASE_BASE).href.replace(/\/$/, '');
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmpDir = await fs.mkdtemp(join(this.dir, '.dl-'));
    const tmp = join(tmpDir, name);
    try {
      const got = await fetchToFile(`${base}/v${version}/${name}`, tmp, { signal: opts.signal, ca: opts.ca });
      if (got.sha256 !== want)
        throw new EtcdOpError('ARCHIVE_INVALID', `sha256 of the downloaded ${name} is ${got.sha256}, expected ${want}`);
      return await this.add(tmp, want);
    } finally {
      await fs.rm(tmpDir, { recursive: true, force: true });
    }
  }
}

// ------------------------------------------------------------- versions and architectures

/** `3.6.16` → [3, 6]; null when `v` holds no x.y version. */
export function minorOf(v: string | null | undefined): [number, number] | null {
  const m = /(\d+)\.(\d+)/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** a's minor minus b's (negative: a is older). */
function compareMinor(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** etcd release archive arch (Go's GOARCH) for a node's `uname -m`; null when etcd ships none. */
export function releaseArch(unameM: string | null | undefined): string | null {
  const map: Record<string, string> = {
    x86_64: 'amd64',
    amd64: 'amd64',
    aarch64: 'arm64',
    arm64: 'arm64',
    ppc64le: 'ppc64le',
    s390x: 's390x',
  };
  return map[(unameM ?? '').trim()] ?? null;
}

/** What discover.sh reports about a node's restore tools (paths and versions). */
export interface RestoreTools {
  tools: { etcdutl: string | null; etcdctl: string | null };
  versions: { etcdutl: string | null; etcdctl: string | null };
}

/**
 * Why a node's tools cannot restore a data dir for etcd `server` (null: they can). A data dir
 * must be written by a tool at least as new as the server's minor: etcd ≥ 3.5 restores with
 * etcdutl (etcd 3.6 has no \`etcdctl snapshot restore\`), and only etcdutl can bump the revision
 * and mark it compacted so the apiservers' watchers do not see time run backwards
 * (kubernetes#131115). etcdctl 3.4 is right for a 3.4 server only. An unknown server version or
 * tool version is let through: restore-member.sh checks again with what it finds on the node.
 */
export function restoreToolProblem(server: string | null, t: RestoreTools): string | null {
  const want = minorOf(server);
  if (!t.tools.etcdutl && !t.tools.etcdctl) return 'has no etcdutl or etcdctl';
  if (!want || compareMinor(want, [3, 5]) < 0) return null;
  const need = `etcdutl ${want.join('.')} or newer`;
  if (!t.tools.etcdutl)
    return `has only etcdctl${t.versions.etcdctl ? ` ${t.versions.etcdctl}` : ''}; etcd ${server} needs ${need}`;
  const have = minorOf(t.versions.etcdutl);
  if (have && compareMinor(have, want) < 0) return `has etcdutl ${t.versions.etcdutl}; etcd ${server} needs ${need}`;
  return null;
}

/** The refusal for restoreToolProblem's findings, with the fix. */
export function restoreToolsError(server: string | null, problems: string[]): EtcdOpError {
  const version = server ? ` ${server}` : '';
  return new EtcdOpError(
    'TOOLS_MISSING',
    `Cannot restore: ${problems.join('; ')}. Install etcd tools${version} there first (Settings → etcd tools: ` +
      `add or download etcd-v${server ?? 'X.Y.Z'}-linux-<arch>.tar.gz, then "Install etcd tools" on those nodes), ` +
      'then plan again. Nothing was changed.',
  );
}

/**
 * Before anything is stopped: can every target restore a data dir for the etcd it will run?
 * `serverVersion` is the version of that etcd (a stacked member: its image tag); left out, it is
 * the etcd binary on the node itself (an external member). Returns the server version per node
 * id, for restore-member.sh, which checks again on the node.
 */
export async function checkRestoreTools(
  deps: EtcdDeps,
  clusterId: string,
  targets: { node: ClusterNode; serverVersion?: string | null }[],
  log?: Log,
): Promise<Map<string, string | null>> {
  const versions = new Map<string, string | null>();
  const problems: string[] = [];
  let wanted: string | null = null;
  await Promise.all(
    targets.map(async (t) => {
      const f = await deps.ops.discover(clusterId, t.node.id, log);
      const server = t.serverVersion !== undefined ? t.serverVersion : f.versions.etcd;
      versions.set(t.node.id, server);
      const problem = restoreToolProblem(server, f);
      if (problem) {
        problems.push(`${t.node.name} ${problem}`);
        wanted ??= server;
        return;
      }
      const tool = f.tools.etcdutl ? `etcdutl ${f.versions.etcdutl ?? ''}` : `etcdctl ${f.versions.etcdctl ?? ''}`;
      log?.('info', `${t.node.name}: restores with ${tool.trim()} for etcd ${server ?? '(version unknown)'}`);
    }),
  );
  if (problems.length) throw restoreToolsError(wanted, problems.sort());
  return versions;
}

/**
 * The cached archive to install on a node: exactly the etcd version the cluster runs, built for
 * the node's CPU — never simply the newest archive (a 3.6 server on a 3.5 cluster's data, or an
 * amd64 binary on an arm64 node, would not start).
 */
export function pickArchive(archives: CachedArchive[], version: string, arch: string): CachedArchive | undefined {
  return archives.find((a) => a.version === version && a.arch === arch);
}

/** What provisioning does for a node's etcd binary. */
export type EtcdInstallChoice =
  | { kind: 'existing'; version: string | null }
  | { kind: 'install'; archive: CachedArchive }
  | { kind: 'missing'; problem: string };

/**
 * Keep the node's own etcd when it runs the cluster's minor and its tools can restore for it;
 * otherwise install the archive of exactly the cluster's version for the node's CPU (uname -m).
 */
export function chooseEtcdInstall(
  f: RestoreTools & {
    tools: { etcd: string | null };
    versions: { etcd: string | null };
    machine: string | null;
  },
  clusterVersion: string | null,
  archives: CachedArchive[],
): EtcdInstallChoice {
  const have = f.tools.etcd ? f.versions.etcd : null;
  if (!clusterVersion) {
    if (f.tools.etcd) return { kind: 'existing', version: have };
    return {
      kind: 'missing',
      problem:
        'has no etcd binary, and the etcd version of the cluster is unknown (no version in the image of etcd.yaml)',
    };
  }
  const [hm, cm] = [minorOf(have), minorOf(clusterVersion)];
  if (f.tools.etcd && hm && cm && compareMinor(hm, cm) === 0 && !restoreToolProblem(clusterVersion, f))
    return { kind: 'existing', version: have };
  const arch = releaseArch(f.machine);
  if (!arch)
    return {
      kind: 'missing',
      problem: `runs on ${f.machine ?? 'an unknown CPU'}, for which etcd publishes no release`,
    };
  const archive = pickArchive(archives, clusterVersion, arch);
  if (archive) return { kind: 'install', archive };
  const own = f.tools.etcd ? ` (its own etcd is ${have ?? 'of unknown version'})` : '';
  return { kind: 'missing', problem: `needs etcd-v${clusterVersion}-linux-${arch}.tar.gz${own}` };
}

/**
 * Upload the archive to a node and install its binaries into /usr/local/bin; the facts then name
 * their absolute paths, which every later script on that node uses (see ClusterOps.toolPaths).
 */
export async function installTools(
  deps: EtcdDeps,
  clusterId: string,
  node: ClusterNode,
  archive: CachedArchive,
  log?: Log,
): Promise<{ installed: string[]; version: string; paths: Partial<ToolPaths> }> {
  const { dir } = await transferDir(deps, clusterId, node, log);
  const remote = posix.join(dir, archive.name);
  log?.('info', `upload ${archive.name} to ${node.name}`);
  const t = await deps.pool.upload(deps.targetOf(clusterId, node.id), archive.file, remote, {
    onCommand: (c) => log?.('cmd', c),
  });
  if (t.sha256 !== archive.sha256) throw new EtcdOpError('ARCHIVE_INVALID', `Upload to ${node.name} corrupted`);
  const res = await deps.ops.run(clusterId, node.id, 'install-etcd-tools.sh', [remote, archive.sha256], { log });
  const v = kesValues(res.stdout);
  const installed = (v.get('INSTALLED') ?? '').split(' ').filter(Boolean);
  const version = v.get('VERSION') ?? archive.version;
  const dest = v.get('DEST') ?? '/usr/local/bin';
  const paths: Partial<ToolPaths> = {};
  for (const t of ['etcd', 'etcdctl', 'etcdutl'] as const) if (installed.includes(t)) paths[t] = posix.join(dest, t);
  // A tool the archive lacks (etcdutl before 3.5) keeps what the node had.
  const had = deps.ops.toolPaths(clusterId, node.id);
  const pick = (t: keyof ToolPaths) => paths[t] ?? had[t] ?? null;
  await deps.ops.recordTools(
    clusterId,
    node.id,
    { etcd: pick('etcd'), etcdctl: pick('etcdctl'), etcdutl: pick('etcdutl') },
    Object.fromEntries(Object.keys(paths).map((t) => [t, version])),
  );
  log?.('info', `${node.name}: ${Object.values(paths).join(', ')} (called by these paths from now on)`);
  return { installed, version, paths };
}
