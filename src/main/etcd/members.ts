// Member repair on the external etcd: remove a member (quorum permitting), add a new or repaired
// one learner-first, and the maintenance actions (defragment, disarm alarms). When etcd refuses a
// change because quorum is lost, say so plainly and point at the way out that always works:
// restore the latest snapshot onto the external cluster.
import type { ClusterNode } from '@shared/domain';
import type { JobDef } from '../jobs/types';
import { STACKED_ETCD_TLS, type Log } from '../cluster/ops';
import { parseMemberList } from '../cluster/etcdjson';
import { EtcdOpError, masterNodes, opSuffix, requireFacts, waitFor, type EtcdDeps } from './deps';
import { ETCD_ENV, ETCD_UNIT, putFile, readFiles, staticPod } from './files';
import { clientUrl, EXTERNAL_PKI, parseEtcdEnv, peerUrl, renderEtcdEnv, renderEtcdUnit } from './external-config';
import { externalMembers, readCa, unitAction, waitExternalHealthy, type ExternalNodeInfo } from './external';
import { issueMemberCerts } from './pki';
import { editApiserverEtcdServers, readApiserverManifest, unifiedDiff } from './manifests';
import { MANIFESTS, PARKED } from './files';
import { isLocalEtcd } from '../cluster/facts';

export const QUORUM_HELP =
  'etcd refuses membership changes without quorum — and quorum cannot come back by removing or adding members (the chicken-and-egg of a sick cluster). The safe way out: restore the latest snapshot onto the external cluster, which rebuilds every member from the same data.';

function hintQuorum(e: unknown): Error {
  const msg = (e as Error).message ?? String(e);
  if (
    /context deadline exceeded|unhealthy cluster|no leader|timed out|re-configuration failed due to not enough started members|etcdserver: request timed out/i.test(
      msg,
    )
  ) {
    return Object.assign(
      new EtcdOpError('QUORUM_LOST', `${QUORUM_HELP} (etcd said: ${msg.split('\n').slice(-2).join(' ')})`),
      { offer: 'restore-external' },
    );
  }
  return e as Error;
}

/**
 * etcd's strict reconfiguration check also refuses changes for ~5 s after a member (re)connects
 * ("unhealthy cluster"). Retry that for a while; if it persists, it is a real loss of quorum.
 */
async function reconfigure<T>(fn: () => Promise<T>, log?: Log, timeoutMs = 40_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!/unhealthy cluster/.test((e as Error).message) || Date.now() > end) throw hintQuorum(e);
      log?.('info', 'etcd says "unhealthy cluster" (a member reconnected recently); retrying in 3 s');
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
}

async function memberList(deps: EtcdDeps, clusterId: string, urls: string[], log?: Log) {
  const master = masterNodes(deps, clusterId)[0];
  return parseMemberList(
    await deps.ops.etcdctl(clusterId, master.id, urls, ['member', 'list', '-w', 'json'], {
      log,
      tls: STACKED_ETCD_TLS,
    }),
  );
}

async function ctl(deps: EtcdDeps, clusterId: string, urls: string[], args: string[], log?: Log): Promise<string> {
  const master = masterNodes(deps, clusterId)[0];
  return deps.ops.etcdctl(clusterId, master.id, urls, args, { log, tls: STACKED_ETCD_TLS, timeoutMs: 45_000 });
}

/** Rewrite --etcd-servers on every master whose apiserver uses the external etcd (rolling). */
async function rewireApiservers(deps: EtcdDeps, clusterId: string, urls: string[], log: Log): Promise<void> {
  const masters = masterNodes(deps, clusterId);
  for (const m of masters) {
    const r = await readFiles(deps, clusterId, m.id, [`${MANIFESTS}/kube-apiserver.yaml`], [], log);
    const text = r.files[0]?.content?.toString('utf8');
    if (!text) continue;
    const cur = readApiserverManifest(text).etcdServers;
    if (
      cur.every((u) =>
        isLocalEtcd(
          u,
          masters.map((x) => x.address),
        ),
      )
    )
      continue; // embedded: not ours to change
    const next = editApiserverEtcdServers(text, urls);
    if (next === text) continue;
    log('info', `${m.name}: --etcd-servers=${urls.join(',')}`);
    await putFile(deps, clusterId, m, `${MANIFESTS}/kube-apiserver.yaml`, next, 0o600, log);
    // One at a time: wait until this apiserver is ready again before touching the next.
    await waitFor(
      `the apiserver on ${m.name}`,
      async () => (await deps.ops.kubeGet(clusterId, m.id, '/readyz')).status === 200,
      { timeoutMs: 120_000, intervalMs: 1500 },
    );
  }
}

export interface MemberCtx {
  deps: EtcdDeps;
  clusterId: string;
  node: ClusterNode;
  members: ExternalNodeInfo[];
  urls: string[];
  memberId?: string;
}

export async function prepareMemberChange(
  deps: EtcdDeps,
  clusterId: string,
  nodeId: string,
  log?: Log,
): Promise<MemberCtx> {
  requireFacts(deps, clusterId);
  const node = deps.inventory.node(clusterId, nodeId);
  const members = await externalMembers(deps, clusterId, log);
  return { deps, clusterId, node, members, urls: members.map((m) => clientUrl(m.node.address)) };
}

export function removeMemberJob(ctx: MemberCtx, clusterName: string): JobDef<MemberCtx> {
  const { deps, clusterId, node } = ctx;
  const others = () => ctx.urls.filter((u) => u !== clientUrl(node.address));
  return {
    kind: 'member-remove',
    title: `Remove ${node.name} from the external etcd (node repair)`,
    destructive: true,
    clusterId,
    clusterName,
    steps: [
      {
        id: 'check',
        title: 'Find the member and check the cluster keeps quorum without it',
        plan: () => [
          {
            kind: 'note',
            text: `Quorum of ${ctx.members.length - 1} remaining member(s) must hold; otherwise the way out is a restore.`,
          },
        ],
        run: async (c, s) => {
          let list;
          try {
            list = await memberList(deps, clusterId, c.urls, s.log);
          } catch (e) {
            throw hintQuorum(e);
          }
          const m = list.find((x) => x.peerUrls.includes(peerUrl(node.address)) || x.name === node.name);
          if (!m) throw new EtcdOpError('NOT_A_MEMBER', `${node.name} is not a member of the external etcd`);
          c.memberId = m.id;
          if (!m.clientUrls.length) s.log('info', `${node.name} was added but never started (no client URLs)`);
          const health = await ctl(deps, clusterId, others(), ['endpoint', 'health', '-w', 'json'], s.log).catch(
            (e: { result?: { stdout: string } }) => e.result?.stdout ?? '[]',
          );
          const healthy = (
            JSON.parse(health.slice(health.indexOf('['), health.lastIndexOf(']') + 1) || '[]') as { health: boolean }[]
          ).filter((h) => h.health).length;
          const remaining = list.length - 1;
          if (healthy < Math.floor(remaining / 2) + 1)
            throw Object.assign(
              new EtcdOpError(
                'QUORUM_LOST',
                `Only ${healthy} of the ${remaining} remaining members are healthy. ${QUORUM_HELP}`,
              ),
              { offer: 'restore-external' },
            );
        },
      },
      {
        id: 'remove',
        title: 'etcdctl member remove',
        plan: () => [{ kind: 'command', node: 'a master', command: `etcdctl member remove <id of ${node.name}>` }],
        run: async (c, s) => {
          await reconfigure(() => ctl(deps, clusterId, others(), ['member', 'remove', c.memberId!], s.log), s.log);
        },
      },
      {
        id: 'rewire',
        title: 'Update every apiserver’s --etcd-servers (rolling)',
        run: async (_c, s) => rewireApiservers(deps, clusterId, others(), s.log),
      },
      {
        id: 'retire',
        title: `Stop and disable etcd on ${node.name}, move its data dir aside`,
        node: node.name,
        run: async (c, s) => {
          await unitAction(deps, clusterId, node, 'stop', s.log).catch((e) =>
            s.log('error', `stop: ${(e as Error).message} (node down? continuing)`),
          );
          await unitAction(deps, clusterId, node, 'disable', s.log).catch(() => '');
          const env = c.members.find((m) => m.node.id === node.id)?.env.get('ETCD_DATA_DIR');
          if (env)
            await deps.ops
              .run(clusterId, node.id, 'move-aside.sh', [env], { log: s.log })
              .catch((e) => s.log('error', `move aside: ${(e as Error).message}`));
        },
      },
    ],
    describeStop: (c) =>
      c.memberId ? `Check the member list; ${node.name} may already be removed.` : 'Nothing was changed.',
  };
}

export function addMemberJob(ctx: MemberCtx, clusterName: string): JobDef<MemberCtx & { learner?: boolean }> {
  const { deps, clusterId, node } = ctx;
  return {
    kind: 'member-add',
    title: `Add ${node.name} to the external etcd`,
    destructive: false,
    clusterId,
    clusterName,
    steps: [
      {
        id: 'check',
        title: 'Check the cluster is healthy and the node is not a member yet',
        run: async (c, s) => {
          let list;
          try {
            list = await memberList(deps, clusterId, c.urls, s.log);
          } catch (e) {
            throw hintQuorum(e);
          }
          if (list.some((m) => m.peerUrls.includes(peerUrl(node.address))))
            throw new EtcdOpError('ALREADY_MEMBER', `${node.name} is already a member; remove it first to repair it`);
          await waitExternalHealthy(
            deps,
            clusterId,
            c.urls.filter((u) => u !== clientUrl(node.address)),
            30_000,
            s.log,
          ).catch((e) => {
            throw hintQuorum(e);
          });
        },
      },
      {
        id: 'prepare',
        title: `Certificates, data dir and unit on ${node.name}`,
        node: node.name,
        run: async (c, s) => {
          const f = await deps.ops.discover(clusterId, node.id, s.log);
          if (!f.tools.etcd)
            throw new EtcdOpError('TOOLS_MISSING', `No etcd binary on ${node.name}: install etcd tools first`);
          const ca = await readCa(deps, clusterId, s.log);
          const certs = await issueMemberCerts(ca, { hostname: f.hostname, address: node.address, name: node.name });
          const dataDir = `/var/lib/etcd-kes-${opSuffix()}`;
          await deps.ops.run(clusterId, node.id, 'prepare-external.sh', [dataDir], { log: s.log });
          await putFile(deps, clusterId, node, `${EXTERNAL_PKI}/ca.crt`, ca.cert.toString('pem') + '\n', 0o644, s.log);
          for (const [name, pair] of [
            ['server', certs.server],
            ['peer', certs.peer],
            ['healthcheck-client', certs.client],
          ] as const) {
            await putFile(deps, clusterId, node, `${EXTERNAL_PKI}/${name}.crt`, pair.cert, 0o644, s.log);
            await putFile(deps, clusterId, node, `${EXTERNAL_PKI}/${name}.key`, pair.key, 0o600, s.log);
          }
          // Learner first (etcd ≥ 3.4): it catches up without counting towards quorum.
          const others = c.urls.filter((u) => u !== clientUrl(node.address));
          const add = (learner: boolean) =>
            reconfigure(
              () =>
                ctl(
                  deps,
                  clusterId,
                  others,
                  [
                    'member',
                    'add',
                    node.name,
                    `--peer-urls=${peerUrl(node.address)}`,
                    ...(learner ? ['--learner'] : []),
                  ],
                  s.log,
                ),
              s.log,
            );
          const out = await add(true).catch(async (e) => {
            if ((e as { code?: string }).code === 'QUORUM_LOST') throw e;
            s.log('info', `learner add failed (${(e as Error).message.split('\n')[0]}); adding as a voting member`);
            return add(false);
          });
          (c as { learner?: boolean }).learner = /learner/i.test(out) || out.includes('--learner');
          const initialCluster = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(out)?.[1];
          if (!initialCluster)
            throw new EtcdOpError('REMOTE_FAILED', `member add printed no ETCD_INITIAL_CLUSTER: ${out}`);
          const token =
            c.members.find((m) => m.node.id !== node.id)?.env.get('ETCD_INITIAL_CLUSTER_TOKEN') ?? 'kes-external';
          await putFile(
            deps,
            clusterId,
            node,
            ETCD_ENV,
            renderEtcdEnv(
              { name: node.name, address: node.address, dataDir },
              { initialCluster, token, state: 'existing' },
              f.versions.etcd, // spelled for the etcd binary that will read it
            ),
            0o644,
            s.log,
          );
          await putFile(deps, clusterId, node, ETCD_UNIT, renderEtcdUnit(f.tools.etcd), 0o644, s.log);
          await unitAction(deps, clusterId, node, 'enable', s.log);
          await unitAction(deps, clusterId, node, 'start', s.log);
          if (!node.roles.includes('etcd'))
            await deps.inventory.upsertNode(clusterId, { ...node, roles: [...node.roles, 'etcd'] });
        },
      },
      {
        id: 'promote',
        title: 'Wait until it has caught up, promote it to a voting member',
        run: async (c, s) => {
          const urls = [...new Set([...c.urls, clientUrl(node.address)])];
          await waitFor(
            `${node.name} to become a voting member`,
            async () => {
              const list = await memberList(
                deps,
                clusterId,
                urls.filter((u) => u !== clientUrl(node.address)),
              );
              const me = list.find((m) => m.peerUrls.includes(peerUrl(node.address)));
              if (!me) throw new Error('not in the member list');
              if (!me.isLearner) return true;
              await ctl(
                deps,
                clusterId,
                urls.filter((u) => u !== clientUrl(node.address)),
                ['member', 'promote', me.id],
              ).catch((e) => {
                s.log('info', `promote: ${(e as Error).message.split('\n').at(-1)}`); // "not in sync" until it caught up
              });
              return false;
            },
            { timeoutMs: 120_000, intervalMs: 2000 },
          );
          await waitExternalHealthy(deps, clusterId, urls, 120_000, s.log);
          c.urls = urls;
        },
      },
      {
        id: 'rewire',
        title: 'Update every apiserver’s --etcd-servers (rolling)',
        run: async (c, s) => rewireApiservers(deps, clusterId, c.urls, s.log),
      },
    ],
  };
}

/** Defragment (one member at a time: it blocks that member) or disarm alarms. */
export function maintenanceJob(
  deps: EtcdDeps,
  clusterId: string,
  clusterName: string,
  action: 'defrag' | 'alarm-disarm',
  urls: string[],
): JobDef<object> {
  return {
    kind: action,
    title: action === 'defrag' ? 'Defragment etcd members' : 'Disarm etcd alarms',
    destructive: false,
    clusterId,
    clusterName,
    steps:
      action === 'defrag'
        ? urls.map((u, i) => ({
            id: `m${i + 1}`,
            title: `Defragment ${u}`,
            plan: () => [{ kind: 'command' as const, node: 'a master', command: `etcdctl --endpoints=${u} defrag` }],
            run: async (_c: object, s: { log: Log }) =>
              void (await ctl(deps, clusterId, [u], ['defrag', '--command-timeout=120s'], s.log)),
          }))
        : [
            {
              id: 'disarm',
              title: 'etcdctl alarm disarm',
              run: async (_c, s) => void (await ctl(deps, clusterId, urls, ['alarm', 'disarm'], s.log)),
            },
          ],
  };
}

export { ETCD_ENV, ETCD_UNIT, PARKED, staticPod, parseEtcdEnv, unifiedDiff };
