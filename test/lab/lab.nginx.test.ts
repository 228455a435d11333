// Lab self-test, second topology: nginx LB, 2 masters, 1 worker, 1 spare without etcd tools, SSH as a
// sudo user. Also exercises the fault hooks, the systemctl stand-in and the release-archive helper.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, upTestLab, waitApiReady } from './helpers';
import { Lab, packEtcdRelease } from './index';
import { run, waitFor } from './util';

let lab: Lab;

beforeAll(async () => {
  lab = await upTestLab({ masters: 2, workers: 1, spares: 1, lb: 'nginx', user: 'kes', noEtcdTools: ['s1'] });
});

afterAll(async () => {
  await lab?.down();
});

describe('lab: nginx LB, sudo user, worker, host without etcd tools', () => {
  it('logs in as the sudo user (passwordless sudo), root login is refused', async () => {
    const r = await lab.ssh(
      'm1',
      'whoami; sudo -n whoami; sudo -n test -r /etc/kubernetes/pki/ca.key && echo can-read-ca',
    );
    expect(r.stdout.trim().split('\n')).toEqual(['kes', 'root', 'can-read-ca']);
    const root = await run('ssh', lab.sshArgs('m1', 'root').concat('true'), { allowFail: true });
    expect(root.code).not.toBe(0);
  });

  it('keeps https://LB:6443/readyz answering through nginx when one apiserver is stopped', async () => {
    expect((await getJson(lab, '/readyz')).status).toBe(200);
    await lab.ssh(
      'm2',
      'sudo mv /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/kube-apiserver.yaml.off',
    );
    await waitFor(
      'm2 apiserver gone',
      async () => (await lab.ssh('m2', 'pgrep -x kube-apiserver || echo gone')).stdout.trim() === 'gone',
      45_000, // the kubelet's 30 s termination grace + the apiserver's own shutdown
      100,
    );
    // nginx (OSS) only has passive health checks: on a loaded 2-core machine a fresh connection
    // can occasionally be dropped while it tries upstreams. A client retrying a dropped connection
    // once is what kubectl and client-go do; every answer must still be 200 from a live apiserver.
    const readyz = async (): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return (await getJson(lab, '/readyz')).status;
        } catch (e) {
          if (attempt >= 3) throw e;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) codes.push(await readyz());
    expect(codes.every((c) => c === 200)).toBe(true);
    await lab.ssh(
      'm2',
      'sudo mv /etc/kubernetes/kube-apiserver.yaml.off /etc/kubernetes/manifests/kube-apiserver.yaml',
    );
    await waitApiReady(lab);
  });

  it('registers the worker as a Node without the control-plane role', async () => {
    const nodes = await waitFor(
      '3 nodes',
      async () => {
        const r = await getJson(lab, '/api/v1/nodes');
        return r.body.items?.length === 3 ? r.body.items : undefined;
      },
      20_000,
      200,
    );
    const w1 = nodes.find((n: { metadata: { name: string } }) => n.metadata.name === 'w1');
    expect(Object.keys(w1.metadata.labels)).not.toContain('node-role.kubernetes.io/control-plane');
    expect(w1.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
  });

  it('has hosts without etcd tools (at boot, and hidden later at runtime) while static pods keep running', async () => {
    expect((await lab.ssh('s1', 'command -v etcdctl etcd || echo none')).stdout.trim()).toBe('none');
    expect((await lab.ssh('m1', 'command -v etcdctl')).stdout.trim()).toBe('/usr/bin/etcdctl');
    await lab.hideEtcdTools('m1');
    expect((await lab.ssh('m1', 'test -e /usr/bin/etcdctl || echo gone')).stdout.trim()).toBe('gone');
    expect((await lab.ssh('m1', 'pgrep -x etcd >/dev/null && echo etcd-runs')).stdout.trim()).toBe('etcd-runs');
    expect((await lab.ssh('w1', 'command -v etcdctl')).stdout.trim()).toBe('/usr/bin/etcdctl'); // others unaffected
  });

  it('runs units with the systemctl/journalctl stand-ins', async () => {
    const unit =
      '[Unit]\nDescription=lab demo\n[Service]\nEnvironment=WORD=hello\nExecStart=/bin/sh -c "echo $WORD from demo; exec sleep 600"\nRestart=always\n[Install]\nWantedBy=multi-user.target\n';
    await lab.ssh('s1', 'sudo tee /etc/systemd/system/demo.service >/dev/null', { input: unit });
    await lab.ssh('s1', 'sudo systemctl daemon-reload && sudo systemctl enable --now demo');
    expect(
      (await lab.ssh('s1', 'systemctl is-active demo; systemctl is-enabled demo')).stdout.trim().split('\n'),
    ).toEqual(['active', 'enabled']);
    expect((await lab.ssh('s1', 'sudo journalctl -u demo --no-pager -n 20')).stdout).toContain('hello from demo');
    await lab.ssh('s1', 'sudo pkill -x sleep');
    await waitFor(
      'demo restarted',
      async () => (await lab.ssh('s1', 'pgrep -x sleep || true')).stdout.trim() !== '',
      10_000,
      100,
    );
    await lab.ssh('s1', 'sudo systemctl stop demo');
    const st = await lab.ssh('s1', 'systemctl is-active demo', { allowFail: true });
    expect(st.stdout.trim()).toBe('inactive');
    expect(st.code).toBe(3);
  });

  it('fault hooks: cut/restore link, fill/free disk, corrupt a file, kill by name, stop/start a host', async () => {
    // network cable
    await lab.cutLink('s1');
    const cut = await run('ssh', lab.sshArgs('s1').concat('-o', 'ConnectTimeout=1', 'true'), { allowFail: true });
    expect(cut.code).not.toBe(0);
    await lab.restoreLink('s1');
    await waitFor(
      's1 reachable',
      async () => (await lab.ssh('s1', 'true', { allowFail: true })).code === 0,
      10_000,
      200,
    );
    // disk
    await lab.fillDisk('w1');
    const full = await lab.ssh('w1', 'sudo cp /etc/os-release /var/lab-more', { allowFail: true });
    expect(full.code).not.toBe(0);
    expect(full.stderr).toMatch(/No space left/);
    await lab.freeDisk('w1');
    await lab.ssh('w1', 'sudo cp /etc/os-release /var/lab-more');
    // corrupt
    await lab.ssh('s1', 'sudo sh -c "head -c 4096 /dev/zero > /var/lab-file"');
    const before = (await lab.ssh('s1', 'sha256sum /var/lab-file')).stdout;
    await lab.corruptFile('s1', '/var/lab-file', { offset: 100, bytes: 32 });
    expect((await lab.ssh('s1', 'sha256sum /var/lab-file; stat -c %s /var/lab-file')).stdout).not.toBe(before);
    expect((await lab.ssh('s1', 'stat -c %s /var/lab-file')).stdout.trim()).toBe('4096');
    // kill by name only inside one host
    expect(await lab.killProcess('w1', 'kubelet')).toBe(1);
    expect((await lab.ssh('m1', 'pgrep -x kubelet >/dev/null && echo alive')).stdout.trim()).toBe('alive');
    // stop and boot a host
    await lab.stopHost('s1');
    expect(lab.running('s1')).toBe(false);
    expect((await run('ssh', lab.sshArgs('s1').concat('true'), { allowFail: true })).code).not.toBe(0);
    await lab.startHost('s1');
    expect((await lab.ssh('s1', 'cat /var/lab-file | wc -c')).stdout.trim()).toBe('4096'); // its disk survived
  });

  it('packs the lab etcd binaries as an etcd release archive with its sha256', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kes-etcd-rel-'));
    try {
      const rel = await packEtcdRelease(dir);
      expect(rel.archive).toBe(join(dir, `etcd-v${rel.version}-linux-amd64.tar.gz`));
      const list = (await run('tar', ['-tzf', rel.archive])).stdout.split('\n');
      expect(list).toContain(`etcd-v${rel.version}-linux-amd64/etcd`);
      expect(list).toContain(`etcd-v${rel.version}-linux-amd64/etcdctl`);
      // etcdutl exists from 3.5 on (the lab's default is 3.6)
      for (const b of rel.binaries) expect(list).toContain(`etcd-v${rel.version}-linux-amd64/${b}`);
      const sum = (await run('sha256sum', [rel.archive])).stdout.split(' ')[0];
      expect(sum).toBe(rel.sha256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tears down without leaving anything', async () => {
    await lab.down();
    expect(await lab.leftovers()).toEqual({ netns: [], links: [], mounts: [], processes: [] });
  });
});
