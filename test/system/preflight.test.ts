// Intent: the cluster-creation pre-flight, run by the app over SSH as the lab's non-root sudo user,
// sees what a user must fix before kubeadm runs: a master that already runs Kubernetes (earlier
// installation, kubeadm's ports taken), an LB host whose port is taken, a host whose user lost
// sudo, a port held by some other program (named with its PID), an SSH port that refuses — each
// with a fix — while a clean host passes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  runPreflight,
  type PreflightNode,
  type PreflightReport,
  type PreflightRow,
} from '../../src/main/kube/preflight';
import { addLabNode, startSystem, type System } from './support';

let sys: System;
const ids: Record<string, string> = {};
const timings: string[] = [];

beforeAll(async () => {
  const t0 = Date.now();
  sys = await startSystem({ prefix: 'kp1', masters: 1, lb: 'haproxy', spares: 2, user: 'kes' });
  ids.m1 = sys.svc.inventory.get(sys.clusterId).nodes.find((n) => n.name === 'm1')!.id;
  for (const n of ['lb', 's1', 's2']) ids[n] = await addLabNode(sys, n);
  // s2's user loses sudo: its sudoers.d file removed as root, outside the app
  await sys.lab.exec('s2', 'rm -f /etc/sudoers.d/90-kes-lab');
  timings.push(`lab up + services: ${Date.now() - t0} ms`);
}, 300_000);
afterAll(async () => {
  if (timings.length) console.log(`preflight timings: ${timings.join('; ')}`);
  await sys?.close();
});

function spec(roles: Record<string, string[]>): PreflightNode[] {
  const inv = sys.svc.inventory.get(sys.clusterId).nodes;
  return Object.entries(roles).map(([name, r]) => {
    const n = inv.find((x) => x.name === name)!;
    return { id: n.id, name: n.name, address: n.address, port: n.port, user: n.user, roles: r };
  });
}

async function preflight(nodes: PreflightNode[], what: string): Promise<PreflightReport> {
  const t0 = Date.now();
  const r = await runPreflight(
    { pool: sys.svc.pool, scripts: sys.svc.scripts, targetOf: (n) => sys.svc.targetOf(sys.clusterId, n.id!) },
    nodes,
    { lbPort: 6443 },
  );
  timings.push(`${what}: ${Date.now() - t0} ms`);
  return r;
}

const rowsOf = (r: PreflightReport, node: string) => r.rows.filter((x) => x.node === node);
const row = (r: PreflightReport, node: string, check: string): PreflightRow => {
  const x = r.rows.find((y) => y.node === node && y.check === check);
  if (!x) throw new Error(`no ${check} row for ${node}: ${JSON.stringify(rowsOf(r, node))}`);
  return x;
};
const table = (rows: PreflightRow[]) => rows.map((x) => `${x.node} ${x.check} ${x.status}: ${x.detail}`).join('\n');

describe('cluster-creation pre-flight on a lab', () => {
  let rep: PreflightReport;

  it('checks every node of the spec in one go', async () => {
    rep = await preflight(spec({ lb: ['lb'], m1: ['master'], s1: ['master'], s2: ['worker'] }), 'four nodes');
    expect(rep.ok).toBe(false);
    expect(new Set(rep.rows.map((x) => x.node))).toEqual(new Set(['lb', 'm1', 's1', 's2']));
    for (const x of rep.rows.filter((y) => y.status === 'fail')) expect(x.fix, `${x.node} ${x.check}`).toBeTruthy();
  });

  it('a master that runs Kubernetes: earlier installation and kubeadm ports in use, reset offered', () => {
    const existing = row(rep, 'm1', 'existing');
    expect(existing.status).toBe('fail');
    expect(existing.detail).toContain('/etc/kubernetes/admin.conf');
    expect(existing.detail).toContain('/etc/kubernetes/manifests/kube-apiserver.yaml');
    expect(existing.detail).toContain('/var/lib/etcd/member');
    expect(existing.detail).toMatch(/running: .*kube-apiserver \(pid \d+\)/);
    expect(existing.detail).toMatch(/kube-controller-manager \(pid \d+\)/);
    expect(existing.fix).toMatch(/^Reset the node first \(offered\)/);
    const api = row(rep, 'm1', 'port-6443');
    expect(api.status).toBe('fail');
    expect(api.detail).toMatch(/in use: \S+:6443 by kube-apiserver \(pid \d+\)/);
    expect(api.fix).toMatch(/^Reset the node first/);
    expect(row(rep, 'm1', 'port-2379').detail).toMatch(/by etcd \(pid \d+\)/);
    expect(row(rep, 'm1', 'sudo')).toMatchObject({ status: 'ok', detail: 'sudo -n works for kes' });
  });

  it('the LB host: its port held by haproxy', () => {
    const lb = row(rep, 'lb', 'port-6443');
    expect(lb.status).toBe('fail');
    expect(lb.detail).toMatch(/by haproxy \(pid \d+\)/);
    expect(lb.fix).toContain('the load balancer needs port 6443');
    expect(row(rep, 'lb', 'existing').status).toBe('ok');
  });

  it('a host whose user lost sudo: a sudo row with the sudoers line to add', () => {
    const sudo = row(rep, 's2', 'sudo');
    expect(sudo.status).toBe('fail');
    expect(sudo.detail).toMatch(/sudo -n true failed for kes: .*password is required/);
    expect(sudo.fix).toContain("echo 'kes ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-kes");
    // what a plain user can see is still checked
    expect(row(rep, 's2', 'os').status).toBe('ok');
    expect(row(rep, 's2', 'port-10250').status).toBe('ok');
    // a plain user cannot look into /var/lib/etcd: said, with the way to a full check
    expect(row(rep, 's2', 'existing')).toMatchObject({ status: 'warn' });
    expect(row(rep, 's2', 'existing').fix).toContain('Give kes passwordless sudo');
  });

  it('a clean spare passes, but for what a lab host legitimately lacks', () => {
    const s1 = rowsOf(rep, 's1');
    const notOk = s1.filter((x) => x.status !== 'ok');
    // a lab host has no cgroup file system mounted (this machine itself is cgroup v1), and a fresh
    // network namespace starts with net.ipv4.ip_forward=0 (node preparation sets it)
    const allowed: Record<string, RegExp> = {
      cgroup: /^no cgroup file system mounted at \/sys\/fs\/cgroup|^v1: /, // hosts see no cgroup mount
      'ip-forward': /ip_forward is 0/,
      disk: /MB free in \/var\/lib/, // the lab caps each host's /var at 2 GB
    };
    for (const x of notOk) {
      expect(Object.keys(allowed), table(s1)).toContain(x.check);
      expect(x.status, table(s1)).toBe('warn');
      expect(x.detail).toMatch(allowed[x.check]);
    }
    for (const c of ['sudo', 'os', 'cpus', 'memory', 'swap', 'existing', 'clock', 'hostname', 'hostname-unique'])
      expect(row(rep, 's1', c).status, `${c}\n${table(s1)}`).toBe('ok');
    for (const p of [6443, 2379, 2380, 10250, 10257, 10259]) expect(row(rep, 's1', `port-${p}`).detail).toBe('free');
    for (const n of ['lb', 'm1', 's1']) expect(row(rep, n, 'clock').status).toBe('ok');
    console.log(`s1 rows:\n${table(s1)}`);
  });

  it('a port held by another program on the clean host: named with its PID', async () => {
    const addr = sys.lab.host('s1').address;
    const started = await sys.lab.exec(
      's1',
      `setsid /usr/bin/python3 -m http.server 6443 --bind ${addr} >/dev/null 2>&1 </dev/null & echo $!; ` +
        `for i in $(seq 50); do ss -ltnH 'sport = :6443' | grep -q . && exit 0; sleep 0.1; done; exit 1`,
    );
    const pid = started.stdout.trim().split('\n')[0];
    try {
      const r = await preflight(spec({ s1: ['master'] }), 's1 with a listener');
      const p = row(r, 's1', 'port-6443');
      expect(p.status).toBe('fail');
      expect(p.detail).toBe(`in use: ${addr}:6443 by python3 (pid ${pid})`);
      expect(p.fix).toBe(`Stop python3 (pid ${pid}) or move it to another port: kube-apiserver needs port 6443`);
      expect(row(r, 's1', 'existing').status).toBe('ok');
      expect(r.ok).toBe(false);
    } finally {
      await sys.lab.exec('s1', `kill ${pid}`, { allowFail: true });
    }
  });

  it('a node whose SSH port refuses: an ssh row, the other checks go on', async () => {
    const closed = await sys.call<{ id: string }>('nodes.upsert', {
      clusterId: sys.clusterId,
      node: {
        name: 'closed',
        address: sys.lab.host('s1').address,
        port: 2222,
        user: 'kes',
        auth: { method: 'key-file', keyPath: sys.lab.keyPath },
      },
    });
    const nodes = spec({ s1: ['worker'] });
    nodes.push({
      id: closed.id,
      name: 'closed',
      address: sys.lab.host('s1').address,
      port: 2222,
      user: 'kes',
      roles: ['worker'],
    });
    const r = await preflight(nodes, 'refused SSH + s1');
    expect(rowsOf(r, 'closed')).toEqual([expect.objectContaining({ check: 'ssh', status: 'fail' })]);
    expect(row(r, 'closed', 'ssh').fix).toContain('port 2222');
    expect(row(r, 's1', 'port-10250').status).toBe('ok');
  });
});
