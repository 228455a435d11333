// The handler table: one entry per contract method (enforced by the `Handlers` type). Inputs
// arrive already validated by the dispatcher; handlers only orchestrate services.
import { clusterPreflight, exportKubeconfig } from '../kube/service';
import { homedir } from 'node:os';
import {
  NodeInput,
  type Auth,
  type ClusterNode,
  type NodeStatus,
  type SecretFlags,
  type SshConfigEntry,
} from '@shared/domain';
import type { ServiceCore } from '../services';
import type { SshTarget } from '../ssh/types';
import { secretAccount } from '../secrets/types';
import { readSshConfig } from '../ssh/sshconfig';
import { localPtySource, sshShellSource, withPrelude } from '../terminal/sources';
import { openKubectlAccess } from '../kube/kubectl-access';
import { findOnPath, kubectlBanner, masterShellCommand } from '../kube/kubeconfig';
import { ApiError } from './errors';
import type { Handlers } from './dispatch';

const KINDS = ['privateKey', 'passphrase', 'password'] as const;

/** The keychain entries a node with this auth method uses. */
export function secretKindsOf(auth: Auth): (typeof KINDS)[number][] {
  switch (auth.method) {
    case 'key-stored':
      return ['privateKey', 'passphrase'];
    case 'key-file':
      return ['passphrase'];
    case 'password':
      return ['password'];
    case 'agent':
      return [];
  }
}

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? homedir() + p.slice(1) : p;
}

export function createHandlers(svc: ServiceCore): Handlers {
  const { inventory, secrets, pool, terminals, hostKeys, settings } = svc;

  async function secretFlags(nodeId: string): Promise<SecretFlags> {
    const [privateKey, passphrase, password] = await Promise.all(
      KINDS.map(async (k) => (await secrets.get(secretAccount(nodeId, k))) !== null),
    );
    return { privateKey, passphrase, password };
  }

  async function forgetNodeSecrets(nodeId: string): Promise<void> {
    await Promise.all(KINDS.map((k) => secrets.delete(secretAccount(nodeId, k)).catch(() => false)));
  }

  /** Copy to `to` the secrets of `from` that its auth method uses; a pasted key must be there to copy. */
  async function copySecrets(from: ClusterNode, to: ClusterNode): Promise<void> {
    for (const kind of secretKindsOf(to.auth)) {
      const value = await secrets.get(secretAccount(from.id, kind));
      if (value !== null) await secrets.set(secretAccount(to.id, kind), value);
      else if (kind !== 'passphrase')
        throw new ApiError(
          'INVALID_INPUT',
          `No ${kind === 'privateKey' ? 'private key' : kind} is stored for ${from.name}`,
          {
            issues: [{ path: ['credential', kind], message: `Nothing stored for ${from.name}` }],
          },
        );
    }
  }

  function statusOf(clusterId: string, nodeId: string): NodeStatus {
    return svc.states.get(nodeId) ?? { clusterId, nodeId, state: 'disconnected' };
  }

  return {
    'app.info': () => ({
      name: 'Kube Etcd Switch',
      version: svc.opts.version,
      transport: svc.opts.transport,
      dataDir: svc.opts.dataDir,
      scriptsDir: svc.scriptsDir,
      keychain: secrets.status,
      platform: process.platform,
      problems: [inventory.loadProblem, settings.loadProblem, hostKeys.loadProblem]
        .filter((p): p is NonNullable<typeof p> => !!p)
        .map((p) => `${p.file} could not be read (${p.error}); it was kept as ${p.backup}`),
    }),

    'clusters.list': () => inventory.list(),
    'clusters.create': ({ name }) => inventory.createCluster(name),
    'clusters.rename': ({ clusterId, name }) => inventory.renameCluster(clusterId, name),
    'clusters.remove': async ({ clusterId }) => {
      const removed = await inventory.removeCluster(clusterId);
      for (const n of removed.nodes) {
        svc.states.delete(n.id);
        await forgetNodeSecrets(n.id);
      }
    },

    'nodes.upsert': async ({ clusterId, node }) => {
      const before = node.id ? inventory.node(clusterId, node.id) : null;
      const saved = await inventory.upsertNode(clusterId, node);
      // A changed address, user or auth invalidates the pooled connection.
      if (
        before &&
        JSON.stringify({ ...before, name: '', roles: [] }) !== JSON.stringify({ ...saved, name: '', roles: [] })
      ) {
        await pool.disconnect(svc.targetOf(clusterId, saved.id)).catch(() => undefined);
      }
      return saved;
    },
    'nodes.addMany': async ({ clusterId, nodes, credential }) => {
      const from = credential?.copyFrom ? inventory.node(clusterId, credential.copyFrom) : null;
      const added = await inventory.addNodes(clusterId, nodes);
      try {
        for (const n of added) {
          if (from) await copySecrets(from, n);
          const kinds = secretKindsOf(n.auth);
          for (const kind of kinds) {
            const value = credential?.[kind];
            if (value) await secrets.set(secretAccount(n.id, kind), value);
          }
        }
      } catch (e) {
        // All or nothing: the nodes just written go again, with whatever was stored for them.
        await inventory.removeNodes(
          clusterId,
          added.map((n) => n.id),
        );
        for (const n of added) await forgetNodeSecrets(n.id);
        throw e;
      }
      return added;
    },
    'nodes.remove': async ({ clusterId, nodeId }) => {
      const target = svc.targetOf(clusterId, nodeId);
      await inventory.removeNode(clusterId, nodeId);
      await pool.disconnect(target).catch(() => undefined);
      svc.states.delete(nodeId);
      await forgetNodeSecrets(nodeId);
    },
    'nodes.status': ({ clusterId }) => inventory.get(clusterId).nodes.map((n) => statusOf(clusterId, n.id)),

    'sshConfig.read': ({ path }) => readSshConfig(expandHome(path ?? settings.get().sshConfigPath)),
    'sshConfig.import': async ({ clusterId, path, hosts }) => {
      const entries = await readSshConfig(expandHome(path ?? settings.get().sshConfigPath));
      return importFromSshConfig(svc, clusterId, entries, hosts);
    },

    'secrets.status': ({ clusterId, nodeId }) => {
      inventory.node(clusterId, nodeId);
      return secretFlags(nodeId);
    },
    'secrets.set': async ({ clusterId, nodeId, kind, value }) => {
      inventory.node(clusterId, nodeId);
      await secrets.set(secretAccount(nodeId, kind), value);
      await pool.disconnect(svc.targetOf(clusterId, nodeId)).catch(() => undefined);
      return secretFlags(nodeId);
    },
    'secrets.copy': async ({ clusterId, fromNodeId, toNodeId }) => {
      const from = inventory.node(clusterId, fromNodeId);
      const to = inventory.node(clusterId, toNodeId);
      if (from.id !== to.id) await copySecrets(from, to);
      await pool.disconnect(svc.targetOf(clusterId, toNodeId)).catch(() => undefined);
      return secretFlags(toNodeId);
    },
    'secrets.clear': async ({ clusterId, nodeId, kind }) => {
      inventory.node(clusterId, nodeId);
      await secrets.delete(secretAccount(nodeId, kind));
      return secretFlags(nodeId);
    },
    'keychain.status': () => secrets.status,

    'ssh.test': ({ clusterId, nodeId }) => pool.testConnection(svc.targetOf(clusterId, nodeId)),
    'ssh.connect': async ({ clusterId, nodeId }) => {
      await pool.connect(svc.targetOf(clusterId, nodeId));
      return statusOf(clusterId, nodeId);
    },
    'ssh.disconnect': async ({ clusterId, nodeId }) => {
      await pool.disconnect(svc.targetOf(clusterId, nodeId));
      return statusOf(clusterId, nodeId);
    },

    'hostKeys.list': () => hostKeys.list(),
    'hostKeys.trust': async ({ clusterId, nodeId, fingerprint }) => {
      // The refused key may be the node's own or that of a jump host on the way to it.
      for (let t: SshTarget | undefined = svc.targetOf(clusterId, nodeId); t; t = t.jump) {
        if (hostKeys.pending(t.host, t.port)?.fingerprint === fingerprint)
          return hostKeys.trustPending(t.host, t.port, fingerprint);
      }
      const node = inventory.node(clusterId, nodeId);
      return hostKeys.trustPending(node.address, node.port, fingerprint);
    },
    'hostKeys.forget': ({ host, port }) => hostKeys.forget(host, port),

    'terminal.openLocal': ({ cols, rows }) =>
      terminals.attach('Local console', localPtySource({ cwd: svc.scriptsDir, cols, rows })),
    'terminal.openKubectl': async ({ clusterId, cols, rows }) => {
      const access = await openKubectlAccess({ ...svc, dataDir: svc.opts.dataDir }, clusterId);
      try {
        const env = { KUBECONFIG: access.path };
        const banner = kubectlBanner({ ...access, kubectl: findOnPath('kubectl', process.env.PATH) });
        const source = withPrelude(localPtySource({ cwd: svc.scriptsDir, cols, rows, env }), banner, () => {
          void access.close();
        });
        const opened = terminals.attach(`kubectl: ${access.cluster}`, source);
        const { path, port, via, server } = access;
        return { ...opened, kubeconfig: { path, port, via, server } };
      } catch (e) {
        await access.close();
        throw e;
      }
    },
    'terminal.openSsh': async ({ clusterId, nodeId, cols, rows }) => {
      const node = inventory.node(clusterId, nodeId);
      // On a master, kubectl works out of the box (KUBECONFIG or a sudo function; the banner says which).
      const master =
        !!inventory.get(clusterId).facts?.masters.some((m) => m.nodeId === nodeId) || node.roles.includes('master');
      const channel = await pool.shell(svc.targetOf(clusterId, nodeId), {
        cols,
        rows,
        ...(master ? { command: masterShellCommand() } : {}),
      });
      return terminals.attach(`${node.name} (${node.user}@${node.address})`, sshShellSource(channel));
    },
    'terminal.write': ({ id, data }) => terminals.write(id, data),
    'terminal.resize': ({ id, cols, rows }) => terminals.resize(id, cols, rows),
    'terminal.ack': ({ id, chars }) => terminals.ack(id, chars),
    'terminal.close': ({ id }) => terminals.close(id),

    'cluster.initialize': ({ clusterId, nodeId }) =>
      svc.etcd.initialize(clusterId, nodeId, (stream, text) => svc.log(`[initialize] ${stream}: ${text}`)),
    'cluster.health': async ({ clusterId, namespaces }) => {
      if (namespaces) await inventory.setHealthNamespaces(clusterId, namespaces);
      return svc.etcd.health(clusterId);
    },
    'cluster.exportKubeconfig': ({ clusterId, path }) => exportKubeconfig(svc, clusterId, expandHome(path)),
    'cluster.preflight': ({ clusterId, lbPort }) => clusterPreflight(svc, clusterId, lbPort),

    'snapshots.list': async ({ clusterId }) =>
      (await svc.snapshots.list()).filter((m) => !clusterId || m.source.clusterId === clusterId),
    'snapshots.update': ({ id, note }) => svc.snapshots.update(id, { note }),
    'snapshots.verify': ({ id, clusterId }) => svc.etcd.verify(id, clusterId),
    'snapshots.export': ({ id, path }) => svc.snapshots.exportTo(id, expandHome(path)),
    'snapshots.import': ({ path, note }) => svc.snapshots.importFile(expandHome(path), note),
    'snapshots.delete': ({ id }) => svc.snapshots.remove(id),
    'snapshots.schedule.get': ({ clusterId }) => svc.etcd.getSchedule(clusterId),
    'snapshots.schedule.set': (s) => {
      inventory.get(s.clusterId);
      return svc.etcd.setSchedule(s);
    },

    'states.list': ({ clusterId }) => svc.stateVault.list(clusterId),

    'jobs.plan': ({ clusterId, job }) => svc.etcd.plan(clusterId, job),
    'jobs.start': ({ jobId, confirmation }) => svc.jobs.start(jobId, confirmation),
    'jobs.cancel': ({ jobId }) => svc.jobs.cancel(jobId),
    'jobs.list': ({ clusterId }) => svc.jobs.list(clusterId),
    'jobs.get': ({ jobId }) => svc.jobs.get(jobId),
    'jobs.logChunk': ({ jobId, offset }) => svc.jobs.logChunk(jobId, offset),

    'scripts.list': () => svc.scripts.list(),
    'scripts.reset': ({ name }) => svc.scripts.reset(name),
    'scripts.diff': ({ name }) => svc.scripts.diff(name),

    'tools.list': () => svc.tools.list(),
    'tools.add': ({ path, sha256 }) => svc.tools.add(expandHome(path), sha256),
    'tools.download': ({ version, arch, sha256 }) =>
      svc.tools.download(version, { arch, sha256, baseUrl: settings.get().etcdReleaseBaseUrl }),

    'settings.get': () => settings.get(),
    'settings.set': (patch) => settings.update(patch),
  };
}

/**
 * Turn chosen ~/.ssh/config hosts into nodes. ProxyJump is linked to another node of the cluster
 * when it names one (by alias); a jump we cannot resolve is reported instead of guessed.
 */
export async function importFromSshConfig(
  svc: ServiceCore,
  clusterId: string,
  entries: SshConfigEntry[],
  hosts: string[],
): Promise<ClusterNode[]> {
  const byAlias = new Map(entries.map((e) => [e.host, e]));
  const problems: { path: string[]; message: string }[] = [];
  const picked: SshConfigEntry[] = [];
  for (const h of hosts) {
    const e = byAlias.get(h);
    if (!e) problems.push({ path: ['hosts', h], message: `Host ${h} is not in the ssh config` });
    else picked.push(e);
  }
  // Import jump hosts first so later entries can refer to them.
  picked.sort((a, b) => Number(!!a.proxyJump) - Number(!!b.proxyJump));
  const candidates = picked.map((e) => {
    const parsed = NodeInput.safeParse({
      name: e.host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, ''),
      address: e.hostName ?? e.host,
      port: e.port ?? 22,
      user: e.user ?? 'root',
      roles: [],
      auth: e.identityFile ? { method: 'key-file', keyPath: expandHome(e.identityFile) } : { method: 'agent' },
    });
    if (!parsed.success) {
      problems.push({
        path: ['hosts', e.host],
        message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      });
    }
    return { entry: e, parsed };
  });
  const cluster = svc.inventory.get(clusterId);
  for (const { entry } of candidates) {
    if (!entry.proxyJump) continue;
    const jumpName = entry.proxyJump.split(',')[0].trim();
    const known = cluster.nodes.some((n) => n.name === jumpName) || picked.some((p) => p.host === jumpName);
    if (!known) {
      problems.push({
        path: ['hosts', entry.host],
        message: `ProxyJump ${jumpName} is not a node of this cluster; import or add it too`,
      });
    }
  }
  if (problems.length) {
    throw new ApiError(
      'INVALID_INPUT',
      `Cannot import: ${problems.map((p) => `${p.path[1]}: ${p.message}`).join('; ')}`,
      {
        issues: problems,
      },
    );
  }
  const saved: ClusterNode[] = [];
  for (const { entry, parsed } of candidates) {
    if (!parsed.success) continue;
    const current = svc.inventory.get(clusterId);
    const existing = current.nodes.find((n) => n.name === parsed.data.name);
    const jumpName = entry.proxyJump?.split(',')[0].trim();
    const jump = jumpName ? current.nodes.find((n) => n.name === jumpName) : undefined;
    saved.push(
      await svc.inventory.upsertNode(clusterId, {
        ...parsed.data,
        id: existing?.id,
        roles: existing?.roles ?? [],
        jumpNodeId: jump?.id ?? null,
      }),
    );
  }
  return saved;
}
