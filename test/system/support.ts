// Shared set-up for system tests: a lab (network-namespace hosts shaped like kubeadm) and the
// app's real main-process services pointed at it, exactly as a user would: add one master by
// address, confirm host keys, initialize.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { Lab, type LabOptions } from '../lab';
import { createServices, type Services } from '../../src/main/services';
import { MemorySecretStore } from '../../src/main/secrets/memory';
import type { ClusterFacts } from '../../src/shared/domain';

export interface System {
  lab: Lab;
  svc: Services;
  dataDir: string;
  clusterId: string;
  /** Dispatch through the API exactly like the renderer does; throws on an error reply. */
  call<T = unknown>(method: string, input: unknown): Promise<T>;
  close(): Promise<void>;
}

/** The app's main-process services on a data dir, as the web entry builds them. */
export function openServices(dataDir: string): Promise<Services> {
  return createServices({
    dataDir,
    resourcesDir: resolve(__dirname, '../../resources'),
    secrets: new MemorySecretStore(),
    transport: 'web',
    version: 'test',
  });
}

export async function startSystem(labOpts: LabOptions, opts: { seed?: string } = {}): Promise<System> {
  const lab = await Lab.up({ cleanupOnExit: true, ...labOpts });
  const dataDir = await fs.mkdtemp(join(tmpdir(), 'kes-system-'));
  const svc = await openServices(dataDir);
  // Always through the current services (reopenServices swaps them, like an app restart).
  const call = async <T>(method: string, input: unknown): Promise<T> => {
    const r = await sys.svc.dispatch(method, input, { client: 'system-test' });
    if (!r.ok) throw Object.assign(new Error(`${method}: ${r.error.code}: ${r.error.message}`), r.error);
    return r.value as T;
  };
  const sys: System = {
    lab,
    svc,
    dataDir,
    clusterId: '',
    call,
    async close() {
      await sys.svc.close();
      await lab.down();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
  const cluster = await call<{ id: string }>('clusters.create', { name: lab.state.clusterName });
  const seedHost = lab.host(opts.seed ?? 'm1');
  const seed = await call<{ id: string }>('nodes.upsert', {
    clusterId: cluster.id,
    node: {
      name: seedHost.name,
      address: seedHost.address,
      user: lab.state.user,
      roles: ['master', 'etcd'],
      auth: { method: 'key-file', keyPath: lab.keyPath },
    },
  });
  // Trust on first use, as a user would after comparing the fingerprint.
  const test = await call<{ hostKey?: { fingerprint: string; status: string } }>('ssh.test', {
    clusterId: cluster.id,
    nodeId: seed.id,
  });
  if (test.hostKey?.status !== 'trusted')
    await call('hostKeys.trust', { clusterId: cluster.id, nodeId: seed.id, fingerprint: test.hostKey!.fingerprint });
  sys.clusterId = cluster.id;
  return sys;
}

/** Close the services and open new ones on the same data dir: what an app restart does. */
/**
 * The app in a child process (child-job.ts) restoring `snapshotId` on the system's data dir, for
 * tests that kill it mid-job; the caller has closed its own services first.
 */
export function spawnChildJob(sys: System, snapshotId: string): ChildProcessWithoutNullStreams {
  const root = resolve(__dirname, '../..');
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      resolve(__dirname, 'child-job.ts'),
      sys.dataDir,
      sys.clusterId,
      snapshotId,
      sys.lab.state.clusterName,
    ],
    {
      cwd: root,
      env: { ...process.env, TSX_TSCONFIG_PATH: resolve(root, 'tsconfig.node.json') },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
}

export async function reopenServices(sys: System): Promise<void> {
  await sys.svc.close();
  sys.svc = await openServices(sys.dataDir);
}

/** Initialize from the seed; confirm the host keys of masters it discovers, then initialize again. */
export async function initialize(sys: System, seedName = 'm1'): Promise<ClusterFacts> {
  const seed = sys.svc.inventory.get(sys.clusterId).nodes.find((n) => n.name === seedName)!;
  try {
    return await sys.call<ClusterFacts>('cluster.initialize', { clusterId: sys.clusterId, nodeId: seed.id });
  } catch (e) {
    const err = e as { code?: string; details?: { nodes: { nodeId: string; hostKey: { fingerprint: string } }[] } };
    if (err.code !== 'HOST_KEYS_UNKNOWN') throw e;
    for (const n of err.details!.nodes)
      await sys.call('hostKeys.trust', {
        clusterId: sys.clusterId,
        nodeId: n.nodeId,
        fingerprint: n.hostKey.fingerprint,
      });
    return sys.call<ClusterFacts>('cluster.initialize', { clusterId: sys.clusterId, nodeId: seed.id });
  }
}

/** Plan a job and run it to the end through the API (what the UI does after confirmation). */
export async function runJob<T = unknown>(
  sys: System,
  job: Record<string, unknown>,
  confirmation?: string,
): Promise<T & { status: string; error?: string; steps: { path: string; status: string }[] }> {
  const planned = await sys.call<{ id: string }>('jobs.plan', { clusterId: sys.clusterId, job });
  await sys.call('jobs.start', { jobId: planned.id, confirmation });
  for (;;) {
    const rec = await sys.call<{ status: string }>('jobs.get', { jobId: planned.id });
    if (rec.status !== 'running' && rec.status !== 'planned') return rec as never;
    await new Promise((r) => setTimeout(r, 300));
  }
}

// --- helpers for the external-etcd tests and bench (added; the ones above are unchanged) --------

/**
 * Add an inventory node for a lab host (key auth, the lab's login user: root or its sudo user) and
 * trust its host key, as a user would.
 */
export async function addLabNode(sys: System, name: string, roles: string[] = []): Promise<string> {
  const n = await sys.call<{ id: string }>('nodes.upsert', {
    clusterId: sys.clusterId,
    node: {
      name,
      address: sys.lab.host(name).address,
      user: sys.lab.state.user,
      roles,
      auth: { method: 'key-file', keyPath: sys.lab.keyPath },
    },
  });
  const t = await sys.call<{ hostKey: { fingerprint: string; status: string } }>('ssh.test', {
    clusterId: sys.clusterId,
    nodeId: n.id,
  });
  if (t.hostKey.status !== 'trusted')
    await sys.call('hostKeys.trust', { clusterId: sys.clusterId, nodeId: n.id, fingerprint: t.hostKey.fingerprint });
  return n.id;
}

/**
 * One anonymous GET of `/readyz` on the lab's API endpoint (the LB), a fresh TCP connection each
 * time; true only for "200 ok". Only ever the lab's own address (checked), never verifies TLS.
 */
export function labReadyz(lab: Lab, timeoutMs = 2000): Promise<boolean> {
  const url = new URL('/readyz', lab.apiEndpoint);
  if (!/^198\.(18|19)\./.test(url.hostname)) throw new Error(`not a lab address: ${url.hostname}`);
  return new Promise((done) => {
    const req = httpsRequest(
      url,
      { method: 'GET', rejectUnauthorized: false, agent: false, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => done(res.statusCode === 200 && body.trim() === 'ok'));
        res.on('error', () => done(false));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done(false));
    req.end();
  });
}

/** The workload every story creates, snapshots, wipes with the drill and expects back. */
export const DEMO_POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'demo-nginx', namespace: 'default', labels: { app: 'demo-nginx' } },
  spec: {
    containers: [{ name: 'nginx', image: 'nginx' }],
    // a lab cluster is often masters only: let the scheduler place it there (the kubelet stand-in
    // then runs it as a placeholder process and reports it Running)
    tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
  },
};

/** POST the demo pod through the lab's API endpoint; returns the HTTP status (201 when created). */
export async function createDemoPod(lab: Lab): Promise<number> {
  const api = lab.api();
  try {
    // The real apiserver refuses pods until the controller-manager has made the namespace's
    // "default" ServiceAccount (a few seconds after a fresh cluster starts): retry that refusal.
    for (let i = 0; ; i++) {
      const r = await api.call('POST', '/api/v1/namespaces/default/pods', DEMO_POD);
      const serviceAccountMissing = r.status === 403 && JSON.stringify(r.body).includes('serviceaccount');
      if (!serviceAccountMissing || i >= 60) return r.status;
      await new Promise((res) => setTimeout(res, 500));
    }
  } finally {
    api.close();
  }
}

/** GET status of a pod in `default` through the lab's API endpoint (-1: no answer at all). */
export async function podStatus(lab: Lab, name = 'demo-nginx'): Promise<number> {
  const api = lab.api();
  try {
    return (await api.call('GET', `/api/v1/namespaces/default/pods/${name}`)).status;
  } catch {
    return -1;
  } finally {
    api.close();
  }
}

/** Namespaces the drill objects live in: the user's default and a team namespace. */
export const DRILL_NAMESPACES = ['default', 'team-a'];
/** Collections counted before a drill, after it and after the restore (pods are counted by the stories). */
const DRILL_COLLECTIONS: Record<string, (ns: string) => string> = {
  deployments: (ns) => `/apis/apps/v1/namespaces/${ns}/deployments`,
  configmaps: (ns) => `/api/v1/namespaces/${ns}/configmaps`,
  secrets: (ns) => `/api/v1/namespaces/${ns}/secrets`,
  roles: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
  rolebindings: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
};

/**
 * Objects of every kind a drill deletes, in `default` and a new namespace `team-a`: a Deployment,
 * a ConfigMap, a Secret, a Role and a RoleBinding in each. Returns the HTTP statuses (all 201).
 */
export async function createDrillObjects(lab: Lab): Promise<number[]> {
  const api = lab.api();
  try {
    const out = [
      (
        await api.call('POST', '/api/v1/namespaces', {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: 'team-a' },
        })
      ).status,
    ];
    for (const ns of DRILL_NAMESPACES) {
      const meta = { name: 'drill-demo', namespace: ns };
      const objects: [string, unknown][] = [
        [
          DRILL_COLLECTIONS.deployments(ns),
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: meta,
            spec: {
              replicas: 1,
              selector: { matchLabels: { app: 'drill-demo' } },
              template: { metadata: { labels: { app: 'drill-demo' } }, spec: DEMO_POD.spec },
            },
          },
        ],
        [DRILL_COLLECTIONS.configmaps(ns), { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta, data: { a: '1' } }],
        [DRILL_COLLECTIONS.secrets(ns), { apiVersion: 'v1', kind: 'Secret', metadata: meta, stringData: { b: '2' } }],
        [
          DRILL_COLLECTIONS.roles(ns),
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'Role',
            metadata: meta,
            rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
          },
        ],
        [
          DRILL_COLLECTIONS.rolebindings(ns),
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: meta,
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'drill-demo' },
            subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns }],
          },
        ],
      ];
      for (const [path, body] of objects) out.push((await api.call('POST', path, body)).status);
    }
    return out;
  } finally {
    api.close();
  }
}

/**
 * Per collection, the objects in DRILL_NAMESPACES ("deployments": 2, …). ConfigMap
 * kube-root-ca.crt is left out: the controller-manager puts it back in every namespace at once.
 */
export async function countDrillObjects(lab: Lab): Promise<Record<string, number>> {
  const api = lab.api();
  try {
    const counts: Record<string, number> = {};
    for (const [kind, path] of Object.entries(DRILL_COLLECTIONS)) {
      counts[kind] = 0;
      for (const ns of DRILL_NAMESPACES) {
        const r = await api.call('GET', path(ns));
        const items = r.status === 200 ? ((r.body as { items?: { metadata: { name: string } }[] }).items ?? []) : [];
        counts[kind] += items.filter((i) => i.metadata.name !== 'kube-root-ca.crt').length;
      }
    }
    return counts;
  } finally {
    api.close();
  }
}

/** Poll `cond` until it is true or `timeoutMs` passed; returns the last value. */
export async function eventually(cond: () => Promise<boolean>, timeoutMs: number, intervalMs = 1000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await cond().catch(() => false);
    if (ok || Date.now() > end) return ok;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
