// Lab self-test, main topology: 3 stacked masters + haproxy LB + 2 spare hosts (one lab for the file).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidrContains, LAB_RANGE } from './guard';
import {
  containerRunning,
  editEtcdManifestForRestore,
  getJson,
  mirrorPod,
  scpBetween,
  upTestLab,
  waitApiReady,
} from './helpers';
import { isClean, Lab } from './index';
import { run, waitFor } from './util';

/** A static pod that takes 8 s to stop after SIGTERM (a stand-in for a slowly exiting apiserver). */
const SLOW_POD = [
  'apiVersion: v1',
  'kind: Pod',
  'metadata: {name: kes-slow, namespace: kube-system}',
  'spec:',
  '  hostNetwork: true',
  '  containers:',
  '  - name: kes-slow',
  '    image: registry.k8s.io/kes-slow:1',
  `    command: [/bin/sh, -c, 'trap "sleep 8; exit 0" TERM; while :; do sleep 0.2; done', kes-slow-marker]`,
  '',
].join('\n');

let lab: Lab;
let upMs = 0;

beforeAll(async () => {
  const t0 = Date.now();
  lab = await upTestLab({ masters: 3, spares: 2, lb: 'haproxy' });
  upMs = Date.now() - t0;
});

afterAll(async () => {
  await lab?.down();
});

describe('lab: 3 masters + haproxy + 2 spares', () => {
  it('comes up with the requested hosts, addresses inside the lab subnet, and an importable inventory', () => {
    console.log(`lab ${lab.prefix} up in ${upMs} ms`);
    expect(lab.hosts.map((h) => `${h.name}:${h.role}`)).toEqual([
      'lb:lb',
      'm1:master',
      'm2:master',
      'm3:master',
      's1:spare',
      's2:spare',
    ]);
    for (const h of lab.hosts) {
      expect(cidrContains(LAB_RANGE, h.address)).toBe(true);
      expect(cidrContains(lab.state.subnet, h.address)).toBe(true);
    }
    const inv = lab.inventory;
    expect(inv.nodes.find((n) => n.name === 'm2')).toMatchObject({ port: 22, user: 'root', roles: ['master', 'etcd'] });
    expect(inv.nodes.find((n) => n.name === 'lb')?.roles).toEqual(['lb']);
    expect(lab.knownHosts).toHaveLength(6);
  });

  it('answers SSH on every host with the lab key and strict host-key checking, and SFTP works', async () => {
    const names = await Promise.all(lab.hosts.map((h) => lab.ssh(h.name, 'hostname').then((r) => r.stdout.trim())));
    expect(names).toEqual(lab.hosts.map((h) => h.name));
    const sftp = await run('sftp', ['-b', '-', ...lab.sshArgs('s1')], {
      input: 'put /etc/os-release /tmp/os-release\nls /tmp\n',
    });
    expect(sftp.stdout).toContain('os-release');
    expect((await lab.ssh('s1', 'cat /tmp/os-release')).stdout).toContain('Debian');
  });

  it('isolates hosts: files and processes of one host are invisible on the others', async () => {
    await lab.ssh(
      'm1',
      'echo m1 > /etc/lab-probe; echo m1 > /var/lab-probe; echo m1 > /root/lab-probe; echo m1 > /tmp/lab-probe; echo m1 > /opt/lab-probe; echo m1 > /usr/local/lab-probe; echo m1 > /home/lab-probe',
    );
    const probe = 'for f in /etc /var /root /tmp /opt /usr/local /home; do test -e $f/lab-probe && echo $f; done; true';
    expect((await lab.ssh('m1', probe)).stdout.trim().split('\n')).toHaveLength(7);
    for (const other of ['m2', 's1', 'lb']) expect((await lab.ssh(other, probe)).stdout.trim()).toBe('');
    // own PID namespace: no etcd on a spare host, and sshd is PID 1
    expect((await lab.ssh('s1', 'pgrep -x etcd || echo none')).stdout.trim()).toBe('none');
    expect((await lab.ssh('s1', 'cat /proc/1/comm')).stdout.trim()).toBe('sshd');
    expect((await lab.ssh('s1', 'ip -4 route')).stdout).not.toContain('default');
  });

  it('has the kubeadm file layout on masters (manifests, PKI, admin.conf → LB)', async () => {
    const etcd = parse((await lab.ssh('m2', 'cat /etc/kubernetes/manifests/etcd.yaml')).stdout);
    const cmd: string[] = etcd.spec.containers[0].command;
    expect(cmd).toContain('--data-dir=/var/lib/etcd');
    expect(cmd).toContain('--initial-cluster-state=existing');
    // kubeadm join lists the members it found (in etcd's member-list order) plus itself
    const initial = cmd.find((f) => f.startsWith('--initial-cluster='))!.slice('--initial-cluster='.length);
    expect(
      initial
        .split(',')
        .map((e) => e.split('=')[0])
        .sort(),
    ).toEqual(['m1', 'm2']);
    expect(initial).toMatch(/^(m[12]=https:\/\/[\d.]+:2380,?){2}$/);
    expect(etcd.spec.volumes.find((v: { name: string }) => v.name === 'etcd-data').hostPath.path).toBe('/var/lib/etcd');
    const api = parse((await lab.ssh('m1', 'cat /etc/kubernetes/manifests/kube-apiserver.yaml')).stdout);
    expect(api.spec.containers[0].command).toContain('--etcd-servers=https://127.0.0.1:2379');
    expect(api.spec.containers[0].command).toContain('--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt');
    const admin = parse((await lab.ssh('m1', 'cat /etc/kubernetes/admin.conf')).stdout);
    expect(admin.clusters[0].cluster.server).toBe(`https://${lab.host('lb').address}:6443`);
    const files = (await lab.ssh('m3', 'cd /etc/kubernetes/pki && ls . etcd')).stdout;
    for (const f of [
      'ca.crt',
      'apiserver.key',
      'apiserver-etcd-client.crt',
      'front-proxy-client.crt',
      'sa.pub',
      'healthcheck-client.crt',
      'peer.key',
      'server.crt',
    ])
      expect(files).toContain(f);
    const san = (await lab.ssh('m3', 'openssl x509 -in /etc/kubernetes/pki/etcd/server.crt -noout -ext subjectAltName'))
      .stdout;
    expect(san).toContain('DNS:m3');
    expect(san).toContain(`IP Address:${lab.host('m3').address}`);
    expect(san).toContain('IP Address:127.0.0.1');
  });

  it('runs one 3-member etcd cluster with TLS across the masters', async () => {
    const flags =
      '--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key';
    const health = await lab.ssh(
      'm1',
      `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 ${flags} endpoint health --cluster`,
    );
    expect((health.stdout + health.stderr).match(/is healthy/g)).toHaveLength(3);
    const members = await lab.ssh(
      'm2',
      `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 ${flags} member list -w json`,
    );
    expect(
      JSON.parse(members.stdout)
        .members.map((m: { name: string }) => m.name)
        .sort(),
    ).toEqual(['m1', 'm2', 'm3']);
    // no client certificate, no service
    const anon = await lab.ssh(
      'm2',
      'ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --command-timeout=2s get x',
      { allowFail: true },
    );
    expect(anon.code).not.toBe(0);
  });

  it('shows every control-plane mirror pod Running, and restarts a killed etcd or apiserver (crictl and the API agree)', async () => {
    for (const m of lab.masters)
      for (const c of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'])
        expect(containerRunning(await mirrorPod(lab, `${c}-${m.name}`)), `${c}-${m.name}`).toBe(true);
    // A master's kubelet talks to its own apiserver (kubeadm 1.36's local mode), which needs the
    // local etcd: while either is down that kubelet cannot report it, exactly as on a real master.
    // So the restart is observed through the runtime (crictl) first, then through the API.
    for (const [host, proc] of [
      ['m3', 'etcd'],
      ['m2', 'kube-apiserver'],
    ]) {
      const attempt = async (): Promise<number> => {
        const out = (await lab.ssh(host, `crictl ps --name '^${proc}$' -o json`)).stdout;
        const cs = (JSON.parse(out) as { containers: { metadata: { attempt: number } }[] }).containers;
        return cs.length === 1 ? cs[0].metadata.attempt : -1;
      };
      const before = await attempt();
      expect(before).toBeGreaterThanOrEqual(0);
      expect(await lab.killProcess(host, proc)).toBe(1);
      await waitFor(`${proc} on ${host} restarted by the kubelet`, async () => (await attempt()) > before, 30_000, 200);
      const back = await waitFor(
        `${proc}-${host} mirror pod Running again with a restart counted`,
        async () => {
          const p = await mirrorPod(lab, `${proc}-${host}`);
          return containerRunning(p) && p!.status.containerStatuses[0].restartCount > before ? p : undefined;
        },
        60_000,
        300,
      );
      expect(back.status.containerStatuses[0].restartCount).toBe(before + 1);
    }
  });

  it('keeps https://LB:6443/readyz answering when one apiserver is stopped', async () => {
    const lbReady = async (): Promise<number> => (await getJson(lab, '/readyz')).status;
    expect(await lbReady()).toBe(200);
    await lab.ssh('m1', 'mv /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/kube-apiserver.yaml.off');
    await waitFor(
      'm1 apiserver gone',
      async () => (await lab.ssh('m1', 'pgrep -x kube-apiserver || echo gone')).stdout.trim() === 'gone',
      45_000, // the kubelet's 30 s termination grace + the apiserver's own shutdown
      100,
    );
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) codes.push(await lbReady());
    expect(codes.every((c) => c === 200)).toBe(true);
    await lab.ssh('m1', 'mv /etc/kubernetes/kube-apiserver.yaml.off /etc/kubernetes/manifests/kube-apiserver.yaml');
    await waitApiReady(lab);
  });

  it('kubelet: a pod taking its grace period to stop holds up no other pod, only a new pod of its own name', async () => {
    // The real kubelet's per-pod workers (pod_workers.go, allowStaticPodStart): kube-apiserver
    // 1.36 often exits only 12–30 s after SIGTERM; meanwhile other static pods change freely, and
    // a pod's own new manifest waits until the old process has gone. A static pod that takes 8 s
    // to stop stands in for the apiserver (whose exit time varies from run to run).
    const M = '/etc/kubernetes/manifests';
    const pids = async (pattern: string): Promise<string[]> =>
      (await lab.ssh('m2', `pgrep -f '${pattern}' || true`)).stdout.split('\n').filter(Boolean);
    await lab.exec('m2', `cat > ${M}/kes-slow.yaml`, { input: SLOW_POD });
    const [oldSlow] = await waitFor(
      'the slow pod',
      async () => {
        const p = await pids('^/bin/sh -c trap.*[k]es-slow-marker');
        return p.length === 1 ? p : undefined;
      },
      20_000,
      100,
    );
    const [oldSched] = await pids('^[^ ]*kube-scheduler ');
    await lab.ssh('m2', `mv ${M}/kes-slow.yaml /tmp/slow.yaml && mv ${M}/kube-scheduler.yaml /tmp/ks.yaml`);
    await lab.ssh('m2', `sleep 1; mv /tmp/ks.yaml ${M}/kube-scheduler.yaml; mv /tmp/slow.yaml ${M}/kes-slow.yaml`);
    await waitFor(
      'a new scheduler while the slow pod is still stopping',
      async () => {
        const s = await pids('^[^ ]*kube-scheduler ');
        return s.length === 1 && s[0] !== oldSched;
      },
      6_000,
      100,
    );
    expect(await pids('^/bin/sh -c trap.*[k]es-slow-marker')).toEqual([oldSlow]);
    let most = 0; // never two of the same name at once
    await waitFor(
      'the new slow pod, after the old one exited',
      async () => {
        const a = await pids('^/bin/sh -c trap.*[k]es-slow-marker');
        most = Math.max(most, a.length);
        return a.length === 1 && a[0] !== oldSlow;
      },
      30_000,
      100,
    );
    expect(most).toBe(1);
    await lab.ssh('m2', `rm -f ${M}/kes-slow.yaml`);
  });

  it('static-pod.sh park with an exit wait: a pod still running after its ports closed is stopped through the runtime', async () => {
    const script = readFileSync(resolve(__dirname, '../../resources/scripts/static-pod.sh'));
    const gone = async (pattern: string) =>
      (await lab.ssh('m3', `pgrep -f '${pattern}' || echo gone`)).stdout.trim() === 'gone';
    // A pod that takes 8 s to stop after SIGTERM, listening on nothing (port 1 stays closed).
    await lab.exec('m3', 'cat > /etc/kubernetes/manifests/kes-slow.yaml', { input: SLOW_POD });
    await waitFor('the slow pod', async () => !(await gone('^/bin/sh -c trap.*[k]es-slow-marker')), 20_000, 100);
    let t0 = Date.now();
    const s = await lab.exec('m3', 'bash -s -- park kes-slow 1 60 "" 2', { input: script });
    expect(s.stderr).toMatch(/still running 2s after its port closed/);
    expect(s.stdout).toContain('KES_RUNTIME_STOPPED=kes-slow');
    expect(await gone('^/bin/sh -c trap.*[k]es-slow-marker')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(7_000); // the pod alone: 8 s
    await lab.ssh('m3', 'rm -f /etc/kubernetes/kes-parked/kes-slow.yaml');

    // kube-apiserver, its port read from kubeadm's manifest ("secure-port"): gone within seconds
    // whether it exits by itself (sometimes at once, often 12–30 s later) or is stopped.
    t0 = Date.now();
    const r = await lab.exec('m3', 'bash -s -- park kube-apiserver secure-port 60 "" 2', { input: script });
    expect(r.stdout).toContain('KES_PORT_closed=6443');
    expect(await gone('^[^ ]*kube-apiserver ')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const u = await lab.exec('m3', 'bash -s -- unpark kube-apiserver secure-port 60', { input: script });
    expect(u.stdout).toContain('KES_PORT_open=6443');
    await waitApiReady(lab);
  });

  it('restores an etcd snapshot on all members (new data dirs, edited manifests): a deleted pod comes back', async () => {
    const api = lab.api();
    try {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'lab-probe', namespace: 'default' },
        spec: { containers: [{ name: 'c', image: 'nginx' }] },
      };
      expect((await api.call('POST', '/api/v1/namespaces/default/pods', pod)).status).toBe(201);
      const flags =
        '--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key';
      await lab.ssh(
        'm1',
        `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 ${flags} snapshot save /root/snap.db`,
      );
      expect((await api.call('DELETE', '/api/v1/namespaces/default/pods/lab-probe')).status).toBe(200);
      expect((await api.call('GET', '/api/v1/namespaces/default/pods/lab-probe')).status).toBe(404);
      await scpBetween(lab, 'm1', 'm2', '/root/snap.db');
      await scpBetween(lab, 'm1', 'm3', '/root/snap.db');
      const members = lab.masters.map((m) => ({ name: m.name, address: m.address }));
      const dataDir = '/var/lib/etcd-restore-1';
      let t = Date.now();
      const step = (what: string): void => {
        console.log(`restore: ${what} ${Date.now() - t} ms`);
        t = Date.now();
      };
      // stop every member first (a member restored alone would form a cluster of one)
      await Promise.all(
        lab.masters.map((m) =>
          lab.ssh(
            m.name,
            'mv /etc/kubernetes/manifests/etcd.yaml /root/etcd.yaml.orig && while pgrep -x etcd >/dev/null; do sleep 0.1; done',
          ),
        ),
      );
      step('members stopped');
      await Promise.all(
        lab.masters.map(async (m) => {
          await lab.ssh(
            m.name,
            // etcd >= 3.5 restores with etcdutl (3.6 has no `etcdctl snapshot restore`); 3.4 only with etcdctl
            `$(command -v etcdutl >/dev/null && echo etcdutl || echo 'env ETCDCTL_API=3 etcdctl') snapshot restore /root/snap.db --name ${m.name} --initial-cluster ${members.map((x) => `${x.name}=https://${x.address}:2380`).join(',')} --initial-cluster-token restore-1 --initial-advertise-peer-urls https://${m.address}:2380 --data-dir ${dataDir}`,
          );
          const orig = (await lab.ssh(m.name, 'cat /root/etcd.yaml.orig')).stdout;
          const edited = editEtcdManifestForRestore(orig, { dataDir, token: 'restore-1', members });
          await lab.ssh(m.name, 'cat > /etc/kubernetes/manifests/etcd.yaml', { input: edited });
        }),
      );
      step('restored, manifests written');
      await lab.waitEtcdHealthy();
      step('etcd healthy');
      await waitApiReady(lab);
      step('apiservers ready');
      const back = await waitFor(
        'pod back',
        async () => {
          const r = await api.call('GET', '/api/v1/namespaces/default/pods/lab-probe');
          return r.status === 200 ? r : undefined;
        },
        30_000,
        200,
      );
      expect((back.body as { metadata: { name: string } }).metadata.name).toBe('lab-probe');
      const ps = (await lab.ssh('m2', 'ps -o args= -C etcd')).stdout;
      expect(ps).toContain(`--data-dir=${dataDir}`);
      expect(ps).toContain('--initial-cluster-token=restore-1');
    } finally {
      api.close();
    }
  });

  it('tears down without leaving namespaces, links, mounts or processes', async () => {
    const t0 = Date.now();
    await lab.down();
    console.log(`lab ${lab.prefix} down in ${Date.now() - t0} ms`);
    const left = await lab.leftovers();
    expect(left).toEqual({ netns: [], links: [], mounts: [], processes: [] });
    expect(isClean(left)).toBe(true);
  });
});
