// Intent: everything works for a non-root login whose sudo `secure_path` lacks /usr/local/bin (the
// default on many distributions), with etcd tools that only the app put there: initialize, install
// etcd tools on the masters, snapshot, provision an external etcd (the app installs its etcd),
// restore onto it, switch to it and back — every tool called by the absolute path discovered on the
// node, every command logged as it ran (`sudo -n …`), and no pre-existing folder re-moded or re-owned.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packEtcdRelease } from '../lab';
import type { ClusterFacts } from '../../src/shared/domain';
import type { HealthReport } from '../../src/shared/health';
import type { JobRecord, JobSummary } from '../../src/shared/jobs';
import type { SnapshotMeta } from '../../src/shared/vault';
import {
  addLabNode,
  createDemoPod,
  eventually,
  initialize,
  podStatus,
  runJob,
  startSystem,
  type System,
} from './support';

const HOSTS = ['lb', 'm1', 'm2', 's1', 's2'];
const EXTERNAL = ['s1', 's2', 'lb'];
const RESTRICTED = '/usr/sbin:/usr/bin:/sbin:/bin';
// Folders that exist before the app touches a node; none may change mode or owner.
const DIRS = [
  '/',
  '/etc',
  '/etc/default',
  '/etc/systemd/system',
  '/var',
  '/var/lib',
  '/usr/local',
  '/usr/local/bin',
  '/etc/kubernetes',
  '/etc/kubernetes/pki',
  '/etc/kubernetes/pki/etcd',
  '/var/lib/etcd',
];

let sys: System;
const ids: Record<string, string> = {};
let before: Map<string, string>[];
let snap: SnapshotMeta;

beforeAll(async () => {
  sys = await startSystem({
    prefix: 'kn1',
    masters: 2,
    lb: 'haproxy',
    spares: 2,
    user: 'kes',
    sudoSecurePath: RESTRICTED,
    // no host has etcd tools of the lab's own: every etcdctl/etcdutl/etcd is one the app installs
    noEtcdTools: HOSTS,
  });
  sys.svc.etcd.gateTimeoutMs = 120_000;
}, 240_000);
afterAll(async () => {
  await sys?.close();
});

const name = () => sys.lab.state.clusterName;
const health = () => sys.call<HealthReport>('cluster.health', { clusterId: sys.clusterId });
const facts = () => sys.svc.inventory.get(sys.clusterId).facts as ClusterFacts;

/** `stat` of every folder of DIRS that exists on `host` (as root, outside the app): path -> line. */
async function dirStats(host: string): Promise<Map<string, string>> {
  const cmd = `for d in ${DIRS.join(' ')}; do [ -d "$d" ] && stat -c '%a %U %G %n' "$d"; done; true`;
  const out = (await sys.lab.exec(host, cmd)).stdout.trim().split('\n').filter(Boolean);
  return new Map(out.map((l) => [l.split(' ').slice(3).join(' '), l]));
}

async function expectOk(job: Record<string, unknown>, confirmation?: string): Promise<JobRecord> {
  const rec = await runJob<JobRecord>(sys, job, confirmation);
  const failed = rec.log.filter((l) => l.stream === 'stderr' || l.stream === 'error').slice(-8);
  expect(rec.status, `${rec.error}\n${failed.map((l) => `${l.path}: ${l.text}`).join('\n')}`).toBe('succeeded');
  return rec;
}

describe('non-root login, sudo secure_path without /usr/local/bin, tools the app installed', () => {
  it('initializes as the sudo user, whose sudo cannot find tools in /usr/local/bin by PATH', async () => {
    expect(sys.lab.state.user).toBe('kes');
    // the lab's own condition: sudo's PATH is the restricted one, and no host has etcd tools yet
    const probe = await sys.lab.ssh('m1', `sudo -n sh -c 'echo "$PATH"; command -v etcdctl || echo none'`);
    expect(probe.stdout.trim().split('\n')).toEqual([RESTRICTED, 'none']);
    before = await Promise.all(HOSTS.map(dirStats));
    const f = await initialize(sys);
    expect(f.mode).toBe('embedded-up');
    expect(f.masters).toHaveLength(2);
    for (const m of f.masters) expect(m.tools).toMatchObject({ etcdctl: null, etcdutl: null });
    expect(sys.svc.inventory.get(sys.clusterId).nodes.every((n) => n.user === 'kes')).toBe(true);
    expect(await createDemoPod(sys.lab)).toBe(201);
  });

  it('installs etcd tools from a release archive on the masters, into /usr/local/bin', async () => {
    const release = await packEtcdRelease(sys.dataDir);
    const archive = await sys.call<{ name: string }>('tools.add', { path: release.archive, sha256: release.sha256 });
    const masters = facts().masters.map((m) => m.nodeId);
    await expectOk({ kind: 'install-tools', nodeIds: masters, archive: archive.name });
    for (const m of ['m1', 'm2']) {
      const r = await sys.lab.exec(m, 'ls /usr/local/bin/etcdctl /usr/local/bin/etcdutl && ! test -e /usr/bin/etcdctl');
      expect(r.stdout.trim()).toBe('/usr/local/bin/etcdctl\n/usr/local/bin/etcdutl');
    }
  });

  it('takes a snapshot on a master with those tools', async () => {
    await expectOk({ kind: 'snapshot', note: 'non-root' });
    [snap] = await sys.call<SnapshotMeta[]>('snapshots.list', { clusterId: sys.clusterId });
    expect(snap).toMatchObject({ integrity: 'ok', etcdVersion: sys.lab.state.etcdVersion });
    expect(snap.totalKeys).toBeGreaterThan(0);
  });

  it('provisions an external etcd on s1, s2 and the LB host, installing its etcd into /usr/local/bin', async () => {
    for (const n of EXTERNAL) ids[n] = await addLabNode(sys, n, n === 'lb' ? ['lb'] : []);
    await expectOk({ kind: 'provision-external', nodeIds: EXTERNAL.map((n) => ids[n]) });
    for (const n of EXTERNAL) {
      const unit = (await sys.lab.exec(n, 'cat /etc/systemd/system/etcd.service')).stdout;
      expect(unit).toContain('ExecStart=/usr/local/bin/etcd');
    }
  });

  it('restores the snapshot onto the external etcd', async () => {
    await expectOk({ kind: 'restore-external', snapshotId: snap.id }, name());
    expect((await sys.lab.exec('s1', 'systemctl is-active etcd', { allowFail: true })).stdout.trim()).toBe('active');
  });

  it('switches the apiservers to the external etcd and back to the stacked members', async () => {
    await expectOk({ kind: 'switch', direction: 'to-external' }, name());
    expect((await health()).mode).toBe('external-up');
    expect(await eventually(async () => (await podStatus(sys.lab)) === 200, 30_000)).toBe(true);
    await expectOk({ kind: 'switch', direction: 'to-embedded' }, name());
    const h = await health();
    expect(h.mode).toBe('embedded-up');
    expect(h.members).toHaveLength(2);
    expect(await eventually(async () => (await podStatus(sys.lab)) === 200, 30_000)).toBe(true);
  });

  it('changed the mode or owner of no folder that existed before, on any node', async () => {
    const after = await Promise.all(HOSTS.map(dirStats));
    HOSTS.forEach((h, i) => {
      for (const [path, line] of before[i]) {
        // a stacked member's old data dir may be moved aside by a restore; everything else stays
        if (path === '/var/lib/etcd' && !after[i].has(path)) continue;
        expect(after[i].get(path), `${h}: ${path}`).toBe(line);
      }
    });
  });

  it('called every etcd tool by the absolute path discovered on the node, and logged each command as it ran', async () => {
    const f = facts();
    for (const n of ['m1', 'm2', ...EXTERNAL]) {
      const node = sys.svc.inventory.get(sys.clusterId).nodes.find((x) => x.name === n)!;
      expect(f.nodeTools[node.id], n).toMatchObject({
        etcd: '/usr/local/bin/etcd',
        etcdctl: '/usr/local/bin/etcdctl',
        etcdutl: '/usr/local/bin/etcdutl',
      });
    }
    const jobs = await sys.call<JobSummary[]>('jobs.list', { clusterId: sys.clusterId });
    const logs = await Promise.all(jobs.map((j) => sys.call<JobRecord>('jobs.get', { jobId: j.id })));
    const cmds = logs.flatMap((r) => r.log.filter((l) => l.stream === 'cmd').map((l) => l.text));
    const scripts = cmds.filter((c) => c.includes('# < scripts/'));
    expect(scripts.length).toBeGreaterThan(20);
    // a non-root login runs every script through `sudo -n`, and the log says so
    for (const c of scripts) expect(c).toMatch(/^[^$]+\$ sudo -n -- sh -c '/);
    const using = (script: string) => scripts.filter((c) => c.endsWith(`# < scripts/${script}`));
    // (snapshots stream through an SSH tunnel now: snapshot-save.sh is only the fallback)
    for (const script of ['restore-member.sh', 'etcdctl.sh']) {
      expect(using(script).length, script).toBeGreaterThan(0);
      for (const c of using(script)) expect(c).toContain('KES_ETCDCTL=/usr/local/bin/etcdctl');
    }
    for (const c of using('restore-member.sh')) expect(c).toContain('KES_ETCDUTL=/usr/local/bin/etcdutl');
  });
});
