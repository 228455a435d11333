// Intent: the same creation with nginx in front of the apiservers and no workers — so the masters
// come up without kubeadm's control-plane taint and the demo pods run on them — then "clean up
// everything": kubeadm reset on every node and the load balancer gone (unit stopped, the config it
// wrote removed, the packages the app installed purged). The nginx config was checked by the real
// `nginx -t` on the LB node before it replaced anything (lb-setup.sh).
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterFacts } from '../../src/shared/domain';
import type { JobRecord } from '../../src/shared/jobs';
import { addLabNode, runJob, startSystem, type System } from './support';
import { LAB_IGNORED_PREFLIGHT } from './fixtures/lab-create';

let sys: System;

beforeAll(async () => {
  sys = await startSystem({ prefix: 'kz2', bare: true, masters: 3, workers: 0, lb: 'nginx' });
  const m1 = sys.svc.inventory.get(sys.clusterId).nodes[0];
  await sys.call('nodes.upsert', { clusterId: sys.clusterId, node: { ...m1, roles: ['master'] } });
  await addLabNode(sys, 'lb', ['lb']);
  await addLabNode(sys, 'm2', ['master']);
  await addLabNode(sys, 'm3', ['master']);
}, 240_000);
afterAll(async () => {
  await sys?.close();
});

const kubectl = (args: string) =>
  sys.lab.exec('m1', `kubectl --kubeconfig /etc/kubernetes/admin.conf ${args}`, { allowFail: true });

describe('create with nginx and no workers, then clean up everything', () => {
  it('creates: nginx checked and started, masters untainted, the demo pods run on the masters', async () => {
    const rec = await runJob<JobRecord>(sys, {
      kind: 'create-cluster',
      lb: { kind: 'nginx', port: 6443 },
      kubernetesMinor: '1.36',
      podCidr: '198.18.128.0/17',
      serviceCidr: '198.19.240.0/20',
      cni: 'flannel',
      cniManifest: { source: 'file', path: resolve(__dirname, 'fixtures/cni-lab.yaml') },
      ignorePreflightErrors: LAB_IGNORED_PREFLIGHT,
      demo: true,
    });
    const errs = rec.log.filter((l) => l.stream === 'error' || l.stream === 'stderr').slice(-12);
    expect(rec.status, `${rec.error}\n${errs.map((l) => `${l.path}: ${l.text}`).join('\n')}`).toBe('succeeded');
    expect(rec.log.some((l) => l.path === 'load-balancer' && /nginx -t -c/.test(l.text))).toBe(true);
    const taints = (await kubectl("get nodes -o jsonpath='{.items[*].spec.taints}'")).stdout;
    expect(taints).not.toContain('node-role.kubernetes.io/control-plane');
    const pods = JSON.parse((await kubectl('get pods -n default -l app=demo-nginx -o json')).stdout) as {
      items: { spec: { nodeName: string }; status: { phase: string } }[];
    };
    expect(pods.items.length).toBe(3);
    expect(pods.items.every((p) => p.status.phase === 'Running' && /^m[123]$/.test(p.spec.nodeName))).toBe(true);
    const viaLb = await sys.lab.exec('m1', `curl -sk --max-time 3 https://${sys.lab.host('lb').address}:6443/readyz`, {
      allowFail: true,
    });
    expect(viaLb.stdout).toBe('ok');
    expect((sys.svc.inventory.get(sys.clusterId).facts as ClusterFacts).mode).toBe('embedded-up');
  }, 600_000);

  it('cleans up everything: every node reset, nginx stopped, its config and package gone', async () => {
    const rec = await runJob<JobRecord>(sys, { kind: 'teardown-cluster' }, sys.lab.state.clusterName);
    expect(rec.status, rec.error).toBe('succeeded');
    for (const m of ['m1', 'm2', 'm3']) {
      const left = await sys.lab.exec(
        m,
        'find /etc/kubernetes/manifests /var/lib/etcd -mindepth 1 2>/dev/null | wc -l',
      );
      expect(left.stdout.trim(), m).toBe('0');
    }
    // the app's config is gone (the package's own put back, or nothing), the packages it installed purged
    const lb = await sys.lab.exec(
      'lb',
      "systemctl is-active nginx; grep -c kube_apiserver /etc/nginx/nginx.conf 2>/dev/null || true; dpkg-query -W -f='${Status}\\n' nginx libnginx-mod-stream 2>&1 || true",
      { allowFail: true },
    );
    const lbLog = rec.log.filter((l) => l.path === 'load-balancer').map((l) => `${l.stream}: ${l.text}`);
    const [state, ours, ...pkgs] = lb.stdout.trim().split('\n');
    expect(state, lbLog.join('\n')).not.toBe('active');
    expect(ours, lbLog.join('\n')).toBe('0');
    expect(pkgs.join('\n')).not.toMatch(/ok installed/);
    expect(sys.svc.inventory.get(sys.clusterId).facts).toBeNull();
  }, 300_000);

  it('a destructive cleanup needs the typed cluster name', async () => {
    const planned = await sys.call<{ id: string }>('jobs.plan', {
      clusterId: sys.clusterId,
      job: { kind: 'teardown-cluster' },
    });
    await expect(sys.call('jobs.start', { jobId: planned.id })).rejects.toMatchObject({
      code: 'CONFIRMATION_REQUIRED',
    });
  });
});
