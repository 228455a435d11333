// Intent: "is my demo pod back?" is answered in the app and kubectl works out of the box, against
// a kubeadm-shaped lab. Health shows the workloads of the chosen namespaces (remembered per
// cluster), read in the same kube-api.sh run as kube-system's pods (one round trip per refresh).
// The local console's "kubectl access" writes a 0600 kubeconfig whose server is an SSH tunnel
// (127.0.0.1 → a master → the control-plane endpoint, tls-server-name kept) that the lab's real
// kubectl uses; no credential shows in the log or the console; closing the console deletes the
// file and closes the port. A master's terminal has KUBECONFIG set (root login) and says so.
import { execFile } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthReport } from '../../src/shared/health';
import { createServices } from '../../src/main/services';
import { MemorySecretStore } from '../../src/main/secrets/memory';
import { createDemoPod, createDrillObjects, eventually, initialize, startSystem, type System } from './support';

const run = promisify(execFile);
const KUBECTL = '/var/cache/kes-lab/kubernetes/v1.36.3/kubectl';

let sys: System;
const logLines: string[] = [];
const termOut = new Map<string, string>();
let unsubscribe: () => void = () => undefined;

/** Collect every terminal's output (acknowledged, as the renderer does). */
function subscribe(): () => void {
  return sys.svc.events.subscribe((event, payload) => {
    if (event === 'terminal.data') {
      const { id, data } = payload as { id: string; data: string };
      termOut.set(id, (termOut.get(id) ?? '') + data);
      void sys.call('terminal.ack', { id, chars: data.length }).catch(() => undefined);
    }
  });
}

beforeAll(async () => {
  sys = await startSystem({ prefix: process.env.KES_SYSTEM_PREFIX ?? 'kd1', masters: 1, lb: 'haproxy' });
  await restartServices();
  unsubscribe = subscribe();
  await initialize(sys);
}, 300_000);
afterAll(async () => {
  unsubscribe();
  await sys?.close();
});

/** The same services on the same data dir (an app restart), with their log captured (checked for credentials). */
async function restartServices(): Promise<void> {
  await sys.svc.close();
  sys.svc = await createServices({
    dataDir: sys.dataDir,
    resourcesDir: resolve(__dirname, '../../resources'),
    secrets: new MemorySecretStore(),
    transport: 'web',
    version: 'test',
    log: (l) => logLines.push(l),
  });
}

const health = (namespaces?: string[]) =>
  sys.call<HealthReport>(
    'cluster.health',
    namespaces ? { clusterId: sys.clusterId, namespaces } : { clusterId: sys.clusterId },
  );

async function screen(id: string, re: RegExp, timeoutMs = 30_000): Promise<string> {
  await eventually(async () => re.test(termOut.get(id) ?? ''), timeoutMs, 200);
  return termOut.get(id) ?? '';
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      done(true);
    });
    s.on('error', () => done(false));
  });
}

describe('health workloads of chosen namespaces', () => {
  it('shows the demo pod and the Deployment in default, ready, from one SSH run on the master', async () => {
    expect(await createDemoPod(sys.lab)).toBe(201);
    expect((await createDrillObjects(sys.lab)).every((s) => s === 201)).toBe(true);
    let r: HealthReport | null = null;
    const ok = await eventually(
      async () => {
        r = await health();
        const pod = r.workloads.pods.find((p) => p.name === 'demo-nginx');
        const dep = r.workloads.controllers.find((c) => c.kind === 'Deployment' && c.name === 'drill-demo');
        return pod?.phase === 'Running' && pod.ready === '1/1' && dep?.ready === 1 && dep.desired === 1;
      },
      90_000,
      2000,
    );
    expect(ok, JSON.stringify((r as HealthReport | null)?.workloads)).toBe(true);
    const w = r!.workloads;
    expect(w.namespaces).toEqual(['default']);
    expect(w.available).toEqual(expect.arrayContaining(['default', 'kube-system', 'team-a']));
    expect(w.errors).toEqual([]);
    const pod = w.pods.find((p) => p.name === 'demo-nginx')!;
    expect(pod).toMatchObject({ namespace: 'default', node: 'm1', restarts: 0 });
    // the Deployment's own pod is listed too; nothing of team-a yet
    expect(w.pods.some((p) => p.name.startsWith('drill-demo-'))).toBe(true);
    expect([...w.controllers, ...w.pods].every((x) => x.namespace === 'default')).toBe(true);

    // Round trips: per refresh, each master is asked in one SSH run (ops.runMany): its /readyz and,
    // on the first master, every list in one GETS — no kube-api.sh run of its own beside it.
    const runs: string[] = [];
    const ops = sys.svc.ops;
    const origRun = ops.run.bind(ops);
    const origMany = ops.runMany.bind(ops);
    ops.run = (c, n, script, args, o) => {
      if (script === 'kube-api.sh') runs.push(`run ${String(args[0])}`);
      return origRun(c, n, script, args, o);
    };
    ops.runMany = (c, n, calls, o) => {
      const kube = calls.filter((k) => k.name === 'kube-api.sh').map((k) => String(k.args[0]));
      if (kube.length) runs.push(`batch ${kube.join(' ')}`);
      return origMany(c, n, calls, o);
    };
    try {
      await health();
    } finally {
      ops.run = origRun;
      ops.runMany = origMany;
    }
    expect(runs).toEqual(['batch GETS GETS']); // the one master: GETS /readyz, then GETS of every list
  });

  it('several namespaces at once, remembered for the cluster', async () => {
    const r = await health(['default', 'team-a']);
    expect(r.workloads.namespaces).toEqual(['default', 'team-a']);
    const deps = r.workloads.controllers.filter((c) => c.kind === 'Deployment' && c.name === 'drill-demo');
    expect(deps.map((d) => d.namespace)).toEqual(['default', 'team-a']);
    const again = await health();
    expect(again.workloads.namespaces).toEqual(['default', 'team-a']);
    expect(sys.svc.inventory.get(sys.clusterId).healthNamespaces).toEqual(['default', 'team-a']);
    await health(['default']);
  });
});

describe('kubectl access from the local console', () => {
  it('a tunnel kubeconfig (0600) that the real kubectl uses; no credential in logs or console; gone on close', async () => {
    const savedPath = process.env.PATH;
    process.env.PATH = `${dirname(KUBECTL)}:${savedPath}`; // the console finds the lab's kubectl
    let opened: { id: string; title: string; kubeconfig: { path: string; port: number; via: string; server: string } };
    try {
      opened = await sys.call('terminal.openKubectl', { clusterId: sys.clusterId, cols: 120, rows: 30 });
    } finally {
      process.env.PATH = savedPath;
    }
    const { path, port, via, server } = opened.kubeconfig;
    expect(opened.title).toBe(`kubectl: ${sys.lab.state.clusterName}`);
    expect(via).toBe('m1');
    expect(server).toBe(sys.lab.apiEndpoint.replace(/\/$/, ''));
    expect((await fs.stat(path)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(dirname(path))).mode & 0o777).toBe(0o700);
    const text = await fs.readFile(path, 'utf8');
    const doc = parse(text) as {
      clusters: { cluster: { server: string; 'tls-server-name': string } }[];
      users: { user: Record<string, string> }[];
    };
    expect(doc.clusters[0].cluster.server).toBe(`https://127.0.0.1:${port}`);
    expect(doc.clusters[0].cluster['tls-server-name']).toBe(new URL(server).hostname);
    const key = doc.users[0].user['client-key-data'];
    expect(key?.length).toBeGreaterThan(100);

    // the lab's real kubectl, through the tunnel, with TLS verified against tls-server-name
    const r = await run(KUBECTL, ['get', 'nodes', '-o', 'name'], { env: { ...process.env, KUBECONFIG: path } });
    expect(r.stdout).toContain('node/m1');

    // the console itself: banner, then kubectl in it
    const id = opened.id;
    const banner = await screen(id, /Try: kubectl get nodes/);
    expect(banner).toContain(`KUBECONFIG=${path}`);
    expect(banner).toContain(`SSH tunnel through m1 to ${server}`);
    sys.svc.terminals.write(id, 'kubectl get pods -n default -o name; echo "KC=$KUBECONFIG"\r');
    const out = await screen(id, /pod\/demo-nginx[\s\S]*KC=\//);
    expect(out).toContain(`KC=${path}`);

    // no credential anywhere we print
    const secrets = [key, doc.users[0].user['client-certificate-data']].filter(Boolean);
    for (const s of secrets) {
      expect(logLines.join('\n')).not.toContain(s.slice(0, 40));
      expect(termOut.get(id)).not.toContain(s.slice(0, 40));
    }
    expect(logLines.some((l) => l.includes(`127.0.0.1:${port}`))).toBe(true);

    // closing the console removes the file and closes the port
    expect(await portOpen(port)).toBe(true);
    await sys.call('terminal.close', { id });
    expect(await eventually(async () => !existsSync(path) && !(await portOpen(port)), 10_000, 200)).toBe(true);
    expect(existsSync(dirname(path))).toBe(false);
  });

  it('a console that exits by itself also removes its kubeconfig', async () => {
    const o = await sys.call<{ id: string; kubeconfig: { path: string; port: number } }>('terminal.openKubectl', {
      clusterId: sys.clusterId,
      cols: 80,
      rows: 24,
    });
    expect(existsSync(o.kubeconfig.path)).toBe(true);
    await screen(o.id, /kube-etcd-switch/);
    sys.svc.terminals.write(o.id, 'exit\r');
    expect(
      await eventually(async () => !existsSync(o.kubeconfig.path) && !(await portOpen(o.kubeconfig.port)), 15_000, 200),
    ).toBe(true);
  });
});

describe('kubectl access when the app quits', () => {
  it('quitting removes the kubeconfig and closes the port; a crash leftover is removed at the next start', async () => {
    const o = await sys.call<{ id: string; kubeconfig: { path: string; port: number } }>('terminal.openKubectl', {
      clusterId: sys.clusterId,
      cols: 80,
      rows: 24,
    });
    expect(await portOpen(o.kubeconfig.port)).toBe(true);
    // what a crash leaves behind: a kubeconfig nobody removed
    const leftover = join(sys.dataDir, 'kubectl-access', 'c-crashed');
    await fs.mkdir(leftover, { recursive: true, mode: 0o700 });
    await fs.writeFile(join(leftover, 'kubeconfig'), 'left', { mode: 0o600 });
    unsubscribe();
    await restartServices(); // close() as the app quits, then a new start on the same data dir
    unsubscribe = subscribe();
    expect(existsSync(o.kubeconfig.path)).toBe(false);
    expect(await portOpen(o.kubeconfig.port)).toBe(false);
    expect(existsSync(leftover)).toBe(false);
  });
});

describe("a master's terminal", () => {
  it('has KUBECONFIG set for the root login and says so; kubectl works there', async () => {
    const m1 = sys.svc.inventory.get(sys.clusterId).nodes.find((n) => n.name === 'm1')!;
    const o = await sys.call<{ id: string }>('terminal.openSsh', {
      clusterId: sys.clusterId,
      nodeId: m1.id,
      cols: 120,
      rows: 30,
    });
    await screen(o.id, /KUBECONFIG=\/etc\/kubernetes\/admin\.conf is set in this shell/);
    sys.svc.terminals.write(o.id, 'kubectl get nodes -o name\r');
    expect(await screen(o.id, /node\/m1/)).toMatch(/node\/m1/);
    await sys.call('terminal.close', { id: o.id });
  });

  it('a sudo-only login gets a bash function running kubectl through sudo -n, and says so', async () => {
    // a second login on m1: bash, key auth, passwordless sudo, cannot read admin.conf itself
    await sys.lab.exec(
      'm1',
      [
        'id -u kes2 >/dev/null 2>&1 || useradd -m -s /bin/bash kes2',
        "usermod -p '*' kes2",
        'install -d -m 700 -o kes2 -g kes2 /home/kes2/.ssh',
        'install -m 600 -o kes2 -g kes2 /root/.ssh/authorized_keys /home/kes2/.ssh/authorized_keys',
        "mkdir -p /etc/sudoers.d && echo 'kes2 ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/kes2 && chmod 440 /etc/sudoers.d/kes2",
      ].join(' && '),
    );
    const node = await sys.call<{ id: string }>('nodes.upsert', {
      clusterId: sys.clusterId,
      node: {
        name: 'm1-kes2',
        address: sys.lab.host('m1').address,
        user: 'kes2',
        roles: ['master'],
        auth: { method: 'key-file', keyPath: sys.lab.keyPath },
      },
    });
    const o = await sys.call<{ id: string }>('terminal.openSsh', {
      clusterId: sys.clusterId,
      nodeId: node.id,
      cols: 160,
      rows: 30,
    });
    await screen(o.id, /is readable through sudo only: in bash, kubectl is a function/);
    sys.svc.terminals.write(o.id, 'echo "KC=${KUBECONFIG:-none}"; kubectl get nodes -o name\r');
    const out = await screen(o.id, /node\/m1/);
    expect(out).toContain('KC=none');
    await sys.call('terminal.close', { id: o.id });
    await sys.call('nodes.remove', { clusterId: sys.clusterId, nodeId: node.id });
  });
});
