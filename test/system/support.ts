// Shared set-up for system tests: a lab (network-namespace hosts shaped like kubeadm) and the
// app's real main-process services pointed at it, exactly as a user would: add one master by
// address, confirm host keys, initialize.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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

export async function startSystem(labOpts: LabOptions, opts: { seed?: string } = {}): Promise<System> {
  const lab = await Lab.up({ cleanupOnExit: true, ...labOpts });
  const dataDir = await fs.mkdtemp(join(tmpdir(), 'kes-system-'));
  const svc = await createServices({
    dataDir,
    resourcesDir: resolve(__dirname, '../../resources'),
    secrets: new MemorySecretStore(),
    transport: 'web',
    version: 'test',
  });
  const call = async <T>(method: string, input: unknown): Promise<T> => {
    const r = await svc.dispatch(method, input, { client: 'system-test' });
    if (!r.ok) throw Object.assign(new Error(`${method}: ${r.error.code}: ${r.error.message}`), r.error);
    return r.value as T;
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
  return {
    lab,
    svc,
    dataDir,
    clusterId: cluster.id,
    call,
    async close() {
      await svc.close();
      await lab.down();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
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
