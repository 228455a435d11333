// Intent: the kubectl console's kubeconfig reaches the cluster through the local tunnel with TLS
// still checked against a name of the apiserver certificate, keeps admin.conf's credentials
// untouched and never quotes them in an error; a master's terminal sets kubectl up (KUBECONFIG
// when admin.conf is readable) and says so; kubectl missing from PATH is detected.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { findOnPath, kubectlBanner, masterShellCommand, tunnelKubeconfig } from './kubeconfig';

const ADMIN = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://lb.example.internal:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVC1TRUNSRVQ=
    client-key-data: S0VZLVNFQ1JFVA==
`;

describe('tunnel kubeconfig', () => {
  it('points at 127.0.0.1:<port>, keeps the endpoint name for TLS and the credentials as they were', () => {
    const t = tunnelKubeconfig(ADMIN, 41234);
    expect(t.server).toBe('https://lb.example.internal:6443');
    expect(t.endpoint).toEqual({ host: 'lb.example.internal', port: 6443 });
    expect(t.serverName).toBe('lb.example.internal');
    const doc = parse(t.text);
    expect(doc.clusters).toEqual([
      {
        name: 'kubernetes',
        cluster: {
          'certificate-authority-data': 'Q0EtREFUQQ==',
          server: 'https://127.0.0.1:41234',
          'tls-server-name': 'lb.example.internal',
        },
      },
    ]);
    expect(doc.users).toEqual([
      {
        name: 'kubernetes-admin',
        user: { 'client-certificate-data': 'Q0VSVC1TRUNSRVQ=', 'client-key-data': 'S0VZLVNFQ1JFVA==' },
      },
    ]);
    expect(doc['current-context']).toBe('kubernetes-admin@kubernetes');
    expect(doc.contexts[0].context).toEqual({ cluster: 'kubernetes', user: 'kubernetes-admin' });
  });

  it('an IP endpoint (IPv6 too) and the default port; an existing tls-server-name is kept', () => {
    expect(tunnelKubeconfig(ADMIN.replace('lb.example.internal:6443', '198.18.0.2:6443'), 1).endpoint).toEqual({
      host: '198.18.0.2',
      port: 6443,
    });
    const v6 = tunnelKubeconfig(ADMIN.replace('lb.example.internal:6443', '[fd00::2]'), 1);
    expect(v6.endpoint).toEqual({ host: 'fd00::2', port: 443 });
    expect(v6.serverName).toBe('fd00::2');
    const named = ADMIN.replace('    server:', '    tls-server-name: kubernetes\n    server:');
    expect(tunnelKubeconfig(named, 1).serverName).toBe('kubernetes');
  });

  it('refuses what it cannot use without quoting the credentials', () => {
    const bad = [
      ADMIN.replace('https://', 'http://'),
      ADMIN.replace(/users:[\s\S]*$/, 'users: []\n'),
      'users: [ {{ S0VZLVNFQ1JFVA== ',
      ADMIN.replace(/server: .*/, 'server: 12'),
    ];
    for (const b of bad) {
      let msg = '';
      try {
        tunnelKubeconfig(b, 1);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).toMatch(/^admin\.conf /);
      expect(msg).not.toContain('S0VZ');
    }
  });
});

describe("a master's terminal", () => {
  const runIt = (conf: string) =>
    execFileSync('sh', ['-c', masterShellCommand(conf)], {
      input: 'echo "KC=${KUBECONFIG:-none}"; type kubectl 2>/dev/null | head -n1; exit\n',
      env: { PATH: process.env.PATH, SHELL: '/bin/bash', HOME: mkdtempSync(join(tmpdir(), 'kes-home-')) },
      encoding: 'utf8',
    });

  it('sets KUBECONFIG when admin.conf is readable and says so in the banner', () => {
    const conf = join(mkdtempSync(join(tmpdir(), 'kes-conf-')), "admin it's.conf");
    writeFileSync(conf, ADMIN);
    const out = runIt(conf);
    expect(out).toContain(`[kube-etcd-switch] KUBECONFIG=${conf} is set in this shell`);
    expect(out).toContain(`KC=${conf}`);
  });

  it('says kubectl is not set up when admin.conf cannot be read (and no sudo answers)', () => {
    const out = runIt('/nonexistent/admin.conf');
    expect(out).toMatch(/\[kube-etcd-switch\] \/nonexistent\/admin\.conf is not readable/);
    expect(out).toContain('KC=none');
  });

  it('defines a bash function through sudo when only sudo can read it', () => {
    const cmd = masterShellCommand();
    expect(cmd).toMatch(/^sh -c '/);
    expect(cmd).toContain('BASH_FUNC_kubectl%%=() { sudo -n "$(type -P kubectl || echo kubectl)" --kubeconfig');
    expect(cmd).toContain('/etc/kubernetes/admin.conf');
  });
});

describe('kubectl on PATH, banner', () => {
  it('finds an executable on PATH; relative and empty entries are skipped', () => {
    const seen: string[] = [];
    const found = findOnPath('kubectl', ['', 'rel/bin', '/a', '/b'].join(':'), (p) => {
      seen.push(p);
      return p === '/b/kubectl';
    });
    expect(found).toBe('/b/kubectl');
    expect(seen).toEqual(['/a/kubectl', '/b/kubectl']);
    expect(findOnPath('kubectl', undefined, () => true)).toBeNull();
  });

  it('says where the kubeconfig is, how the tunnel goes, and when kubectl is missing', () => {
    const a = {
      cluster: 'prod',
      path: '/d/kubeconfig',
      port: 4000,
      via: 'm1',
      server: 'https://lb:6443',
      serverName: 'lb',
    };
    const with_ = kubectlBanner({ ...a, kubectl: '/usr/bin/kubectl' });
    expect(with_).toContain('KUBECONFIG=/d/kubeconfig');
    expect(with_).toContain('https://127.0.0.1:4000 = an SSH tunnel through m1 to https://lb:6443 (TLS name lb)');
    expect(with_).toContain('removed when this console closes');
    expect(with_).toContain('\r\n');
    expect(kubectlBanner({ ...a, kubectl: null })).toMatch(/kubectl is not on PATH on this machine: install kubectl/);
  });
});
