// Intent: the app is correct for etcd 3.4, 3.5 and 3.6 alike — it turns the initial corruption
// check off in either spelling (kubeadm ≤ 1.33's flag, 1.34+'s feature gate) touching nothing
// else; it reads the version a stacked member runs from its image; it refuses a restore tool older
// than the server (etcdctl 3.4 on a 3.5+ cluster) with the fix; provisioning picks exactly the
// cluster's version for the node's CPU, never the newest archive; and external env files are
// spelled for the etcd that reads them, with the same value check when edited.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '../../src/shared/domain';
import type { EtcdDeps } from '../../src/main/etcd/deps';
import {
  etcdVersionOfImage,
  featureGate,
  firstStartManifest,
  readEtcdManifest,
  setFeatureGate,
} from '../../src/main/etcd/manifests';
import {
  checkRestoreTools,
  chooseEtcdInstall,
  releaseArch,
  restoreToolProblem,
  type CachedArchive,
} from '../../src/main/etcd/tools';
import { checkEtcdEnvValue, editEtcdEnv, parseEtcdEnv, renderEtcdEnv } from '../../src/main/etcd/external-config';
import { prepareProvision, provisionJob } from '../../src/main/etcd/external';
import { planStackedMembers, restoreEmbeddedJob } from '../../src/main/etcd/restore-embedded';

const kubeadm133 = readFileSync(join(__dirname, 'fixtures/etcd.yaml'), 'utf8');
/** What kubeadm 1.34+ writes for etcd 3.6 (cmd/kubeadm/app/phases/etcd/local.go). */
const kubeadm136 = kubeadm133
  .replace('    - --experimental-initial-corrupt-check=true\n', '')
  .replace(
    '    - --experimental-watch-progress-notify-interval=5s\n',
    '    - --feature-gates=InitialCorruptCheck=true\n    - --watch-progress-notify-interval=5s\n',
  )
  .replace('registry.k8s.io/etcd:3.5.15-0', 'registry.k8s.io/etcd:3.6.16-0');

const changedLines = (a: string, b: string) => b.split('\n').filter((l, i) => l !== a.split('\n')[i]);

describe('initial corruption check, both spellings', () => {
  it('turns the kubeadm 1.34+ feature gate off in place, and nothing else', () => {
    const first = firstStartManifest(kubeadm136)!;
    expect(changedLines(kubeadm136, first)).toEqual(['    - --feature-gates=InitialCorruptCheck=false']);
    expect(firstStartManifest(first)).toBeNull(); // already off: nothing to do, nothing to put back
  });

  it('edits only that gate in a list and keeps the other gates and their order', () => {
    const yaml = kubeadm136.replace(
      '--feature-gates=InitialCorruptCheck=true',
      '--feature-gates=CompactHashCheck=true,InitialCorruptCheck=true,TxnModeWriteWithSharedBuffer=false',
    );
    expect(changedLines(yaml, firstStartManifest(yaml)!)).toEqual([
      '    - --feature-gates=CompactHashCheck=true,InitialCorruptCheck=false,TxnModeWriteWithSharedBuffer=false',
    ]);
    // a list without the gate (or with it off) means the check is off: not touched
    expect(firstStartManifest(yaml.replace('InitialCorruptCheck=true,', ''))).toBeNull();
  });

  it('turns both off when a manifest carries both spellings', () => {
    const both = kubeadm136.replace(
      '    - --feature-gates=InitialCorruptCheck=true\n',
      '    - --feature-gates=InitialCorruptCheck=true\n    - --experimental-initial-corrupt-check=true\n',
    );
    const first = firstStartManifest(both)!;
    expect(first).toContain('--feature-gates=InitialCorruptCheck=false');
    expect(first).toContain('--experimental-initial-corrupt-check=false');
  });

  it('reads and sets gates the way etcd parses the list', () => {
    expect(featureGate('A=true, InitialCorruptCheck=true', 'InitialCorruptCheck')).toBe('true');
    expect(featureGate('A=true', 'InitialCorruptCheck')).toBeUndefined();
    expect(setFeatureGate('A=true', 'B', 'false')).toBe('A=true,B=false');
    expect(setFeatureGate(undefined, 'B', 'false')).toBe('B=false');
  });
});

describe('the etcd version a stacked member runs', () => {
  it('comes from the image tag of etcd.yaml', () => {
    expect(readEtcdManifest(kubeadm136).version).toBe('3.6.16');
    expect(readEtcdManifest(kubeadm133).version).toBe('3.5.15');
    expect(etcdVersionOfImage('registry.k8s.io/etcd:3.4.13-0')).toBe('3.4.13');
    expect(etcdVersionOfImage('mirror.example:5000/etcd:v3.5.9')).toBe('3.5.9');
    expect(etcdVersionOfImage('registry.k8s.io/etcd:3.6.16-0@sha256:' + 'a'.repeat(64))).toBe('3.6.16');
    expect(etcdVersionOfImage('mirror.example:5000/etcd@sha256:' + 'a'.repeat(64))).toBeNull();
    expect(etcdVersionOfImage(undefined)).toBeNull();
  });
});

const tools = (etcdutl: string | null, etcdctl: string | null) => ({
  tools: { etcdutl: etcdutl && '/usr/local/bin/etcdutl', etcdctl: etcdctl && '/usr/bin/etcdctl' },
  versions: { etcdutl, etcdctl },
});

describe('restore tool vs etcd server', () => {
  it('refuses etcdctl 3.4 for a 3.5+ server and an etcdutl older than the server', () => {
    expect(restoreToolProblem('3.6.16', tools(null, '3.4.23'))).toMatch(/only etcdctl 3\.4\.23.*etcdutl 3\.6 or newer/);
    expect(restoreToolProblem('3.5.30', tools(null, '3.4.23'))).toMatch(/etcdutl 3\.5 or newer/);
    expect(restoreToolProblem('3.6.16', tools('3.5.30', '3.4.23'))).toMatch(/etcdutl 3\.5\.30; etcd 3\.6\.16 needs/);
    expect(restoreToolProblem('3.6.16', tools(null, null))).toMatch(/no etcdutl or etcdctl/);
  });

  it('accepts a tool at least as new as the server', () => {
    expect(restoreToolProblem('3.6.16', tools('3.6.15', null))).toBeNull();
    expect(restoreToolProblem('3.5.30', tools('3.6.16', null))).toBeNull();
    expect(restoreToolProblem('3.4.23', tools(null, '3.4.23'))).toBeNull();
    expect(restoreToolProblem('3.4.23', tools('3.6.16', null))).toBeNull();
    expect(restoreToolProblem(null, tools(null, '3.4.23'))).toBeNull(); // unknown: the script checks
  });

  it('checks every target before anything stops, naming the nodes and the fix', async () => {
    const node = (name: string) => ({ id: `id-${name}`, name }) as ClusterNode;
    const found: Record<string, ReturnType<typeof tools> & { versions: { etcd: string | null } }> = {
      'id-m1': { ...tools('3.6.16', null), versions: { etcd: null, etcdutl: '3.6.16', etcdctl: null } },
      'id-m2': { ...tools(null, '3.4.23'), versions: { etcd: null, etcdutl: null, etcdctl: '3.4.23' } },
      'id-e1': { ...tools('3.6.16', '3.6.16'), versions: { etcd: '3.6.16', etcdutl: '3.6.16', etcdctl: '3.6.16' } },
    };
    const deps = { ops: { discover: async (_c: string, id: string) => found[id] } } as unknown as EtcdDeps;
    const err = await checkRestoreTools(deps, 'c1', [
      { node: node('m1'), serverVersion: '3.6.16' },
      { node: node('m2'), serverVersion: '3.6.16' },
    ]).catch((e: Error & { code: string }) => e);
    expect(err).toMatchObject({ code: 'TOOLS_MISSING' });
    expect((err as Error).message).toMatch(/m2 has only etcdctl 3\.4\.23/);
    expect((err as Error).message).toMatch(/Install etcd tools 3\.6\.16/);
    expect((err as Error).message).not.toMatch(/m1/);
    // An external member's server is the etcd binary on its node.
    const v = await checkRestoreTools(deps, 'c1', [{ node: node('e1') }]);
    expect(v.get('id-e1')).toBe('3.6.16');
  });
});

describe('which etcd provisioning installs', () => {
  const archive = (version: string, arch: string): CachedArchive => ({
    file: `/cache/etcd-v${version}-linux-${arch}.tar.gz`,
    name: `etcd-v${version}-linux-${arch}.tar.gz`,
    version,
    arch,
    sha256: 'f'.repeat(64),
    binaries: [],
  });
  // newest first, as ToolCache.list() sorts them
  const cache = [archive('3.6.16', 'amd64'), archive('3.5.30', 'arm64'), archive('3.5.30', 'amd64')];
  const node = (machine: string, etcd: string | null = null) => ({
    machine,
    tools: { etcd: etcd && '/usr/bin/etcd', etcdutl: etcd && '/usr/bin/etcdutl', etcdctl: etcd && '/usr/bin/etcdctl' },
    versions: { etcd, etcdutl: etcd, etcdctl: etcd },
  });

  it("installs exactly the cluster's version for the node's CPU, not the newest archive", () => {
    expect(chooseEtcdInstall(node('x86_64'), '3.5.30', cache)).toEqual({
      kind: 'install',
      archive: cache[2],
    });
    expect(chooseEtcdInstall(node('aarch64'), '3.5.30', cache)).toEqual({ kind: 'install', archive: cache[1] });
  });

  it('says which archive is missing', () => {
    expect(chooseEtcdInstall(node('aarch64'), '3.6.16', cache)).toEqual({
      kind: 'missing',
      problem: 'needs etcd-v3.6.16-linux-arm64.tar.gz',
    });
    expect(chooseEtcdInstall(node('mips'), '3.6.16', cache).kind).toBe('missing');
  });

  it("keeps the node's own etcd only when it runs the cluster's minor", () => {
    expect(chooseEtcdInstall(node('x86_64', '3.6.15'), '3.6.16', cache)).toEqual({
      kind: 'existing',
      version: '3.6.15',
    });
    expect(chooseEtcdInstall(node('x86_64', '3.4.23'), '3.6.16', cache)).toEqual({
      kind: 'install',
      archive: cache[0],
    });
  });

  it('maps uname -m to the release archive arch', () => {
    expect(['x86_64', 'aarch64', 'ppc64le', 's390x', 'armv7l'].map(releaseArch)).toEqual([
      'amd64',
      'arm64',
      'ppc64le',
      's390x',
      null,
    ]);
  });
});

describe('/etc/default/etcd of external members', () => {
  const render = (version: string | null) =>
    parseEtcdEnv(
      renderEtcdEnv(
        { name: 'e1', address: '198.18.0.9', dataDir: '/var/lib/etcd' },
        { initialCluster: 'e1=https://198.18.0.9:2380', token: 't1', state: 'new' },
        version,
      ),
    );

  it('is spelled for the etcd version that reads it (3.6 renamed the experimental flags)', () => {
    expect(render('3.6.16').get('ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL')).toBe('5s');
    expect(render('3.6.16').has('ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL')).toBe(false);
    for (const v of ['3.4.23', '3.5.30', null]) {
      expect(render(v).get('ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL')).toBe('5s');
      expect(render(v).has('ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL')).toBe(false);
    }
  });

  it('refuses unsafe values when edited, as when rendered', () => {
    const text = renderEtcdEnv(
      { name: 'e1', address: '198.18.0.9', dataDir: '/var/lib/etcd' },
      { initialCluster: 'e1=https://198.18.0.9:2380', token: 't1', state: 'new' },
      '3.6.16',
    );
    for (const bad of ['/var/lib/$(id)', 'a"b', 'a\nETCD_NAME=x', 'a\\b', 'a`id`'])
      expect(() => editEtcdEnv(text, { dataDir: bad })).toThrow(/Unsafe character/);
    expect(parseEtcdEnv(editEtcdEnv(text, { token: 'kes-2' })).get('ETCD_INITIAL_CLUSTER_TOKEN')).toBe('kes-2');
  });

  it('refuses NUL, CR and other control characters alike in rendered and edited values (one check)', () => {
    const member = { name: 'e1', address: '198.18.0.9', dataDir: '/var/lib/etcd' };
    const cluster = { initialCluster: 'e1=https://198.18.0.9:2380', token: 't1', state: 'new' as const };
    const text = renderEtcdEnv(member, cluster, '3.6.16');
    for (const bad of ['a\u0000b', 'a\rETCD_NAME=x', 'a\tb', 'a\u001bb', 'a\u007fb', 'a\nb', 'a"b']) {
      expect(() => checkEtcdEnvValue(bad)).toThrow(/Unsafe character/);
      expect(() => renderEtcdEnv({ ...member, dataDir: bad }, cluster, '3.6.16')).toThrow(/Unsafe character/);
      expect(() => renderEtcdEnv(member, { ...cluster, token: bad }, '3.6.16')).toThrow(/Unsafe character/);
      expect(() => editEtcdEnv(text, { dataDir: bad })).toThrow(/Unsafe character/);
      expect(() => editEtcdEnv(text, { initialCluster: bad })).toThrow(/Unsafe character/);
      expect(() => editEtcdEnv(text, { token: bad })).toThrow(/Unsafe character/);
    }
    expect(() => checkEtcdEnvValue('e1=https://198.18.0.9:2380,e2=https://[fd00::2]:2380')).not.toThrow();
  });
});

describe('provisioning plan', () => {
  const m1 = { id: 'id-m1', name: 'm1', address: '198.18.0.2', user: 'root', roles: ['master'] } as ClusterNode;
  const e1 = { id: 'id-e1', name: 'e1', address: '198.18.0.10', user: 'root', roles: [] } as unknown as ClusterNode;
  const arc = (version: string, arch: string): CachedArchive => ({
    file: `/cache/etcd-v${version}-linux-${arch}.tar.gz`,
    name: `etcd-v${version}-linux-${arch}.tar.gz`,
    version,
    arch,
    sha256: 'a'.repeat(64),
    binaries: [],
  });
  function deps(machine: string) {
    return {
      inventory: {
        get: () => ({ nodes: [m1, e1], facts: { masters: [{ nodeId: m1.id, name: 'm1' }], etcdVersion: null } }),
        node: (_c: string, id: string) => [m1, e1].find((n) => n.id === id)!,
      },
      ops: {
        // m1's etcd.yaml is parked (the cluster runs on the external etcd): still the version source
        run: async (_c: string, _id: string, script: string) => ({
          stdout:
            script === 'collect-files.sh'
              ? `KES_FILE=/etc/kubernetes/manifests/etcd.yaml|0600|-\nKES_FILE=/etc/kubernetes/kes-parked/etcd.yaml|0600|${Buffer.from(kubeadm136).toString('base64')}\n`
              : '',
        }),
        discover: async () => ({
          hostname: 'e1',
          machine,
          etcdUnit: null,
          etcd: null,
          listening: [],
          tools: { etcd: null, etcdctl: null, etcdutl: null, kubectl: null },
          versions: { etcd: null, etcdctl: null, etcdutl: null },
        }),
      },
    } as unknown as EtcdDeps;
  }
  // newest first, as ToolCache.list() returns them
  const cache = { list: async () => [arc('3.7.0', 'arm64'), arc('3.6.16', 'amd64'), arc('3.6.16', 'arm64')] };

  it("installs the cluster's etcd (from the image in etcd.yaml) built for the node's CPU", async () => {
    const ctx = await prepareProvision(deps('aarch64'), cache as never, 'c1', [e1.id], true);
    expect(ctx.clusterVersion).toBe('3.6.16');
    expect(ctx.archives.get(e1.id)?.name).toBe('etcd-v3.6.16-linux-arm64.tar.gz');
    const plan = await provisionJob(ctx, 'lab').steps[1].children![0].plan!(ctx);
    expect(plan).toContainEqual(
      expect.objectContaining({
        command: `bash install-etcd-tools.sh etcd-v3.6.16-linux-arm64.tar.gz ${'a'.repeat(64)}`,
      }),
    );
    const env = plan.find((p) => p.kind === 'file' && p.path === '/etc/default/etcd') as { diff: string };
    expect(env.diff).toContain('+ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL="5s"'); // spelled for 3.6
  });

  it('refuses, naming the archive to add, when the cache lacks that version for that CPU', async () => {
    await expect(prepareProvision(deps('s390x'), cache as never, 'c1', [e1.id], true)).rejects.toThrow(
      /e1 needs etcd-v3\.6\.16-linux-s390x\.tar\.gz.*Nothing was changed/,
    );
  });
});

describe('embedded restore: the version its tools must fit', () => {
  it("is each member's image tag, checked before anything stops and passed to restore-member.sh", async () => {
    const m1 = { id: 'id-m1', name: 'm1', address: '198.18.0.2', user: 'root', roles: ['master'] } as ClusterNode;
    const discovered: string[] = [];
    const deps = {
      inventory: { get: () => ({ nodes: [m1], facts: { etcdVersion: null } }) },
      ops: {
        run: async () => ({
          stdout: `KES_FILE=/etc/kubernetes/manifests/etcd.yaml|0600|${Buffer.from(kubeadm136).toString('base64')}\n`,
        }),
        discover: async (_c: string, id: string) => {
          discovered.push(id);
          return tools(null, '3.4.23');
        },
      },
    } as unknown as EtcdDeps;
    const plan = await planStackedMembers(deps, 'c1', [m1], '20260101-000000-abcd');
    expect(plan.members[0].serverVersion).toBe('3.6.16');
    const ctx = { ...plan, deps, clusterId: 'c1', meta: { id: 'snap-1', sha256: 'f'.repeat(64) } } as never;
    const job = restoreEmbeddedJob(ctx, 'lab');
    const restore = job.steps.find((s) => s.id === 'restore')!.children![0];
    const [cmd] = (await restore.plan!(ctx)) as { command: string }[];
    expect(cmd.command).toMatch(/ 3\.6\.16$/);
    const preflight = job.steps.find((s) => s.id === 'preflight')!;
    await expect(preflight.run!(ctx, { log: () => undefined } as never)).rejects.toThrow(
      /m1 has only etcdctl 3\.4\.23; etcd 3\.6\.16 needs etcdutl 3\.6 or newer/,
    );
    expect(discovered).toEqual(['id-m1']);
  });
});
