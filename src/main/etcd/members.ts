// Member repair on the external etcd: remove a member (quorum permitting), add a new or repaired
// one learner-first, and the maintenance actions (defragment, disarm alarms). When etcd refuses a
// change because quorum is lost, say so plainly and point at the way out that always works:
// restore the latest snapshot onto the external cluster.
import type { ClusterNode } from '@shared/domain';
import type { JobDef } from '../jobs/types';
import type { PlanItem } from '@shared/jobs';
import { STACKED_ETCD_TLS, type Log } from '../cluster/ops';
import { parseMemberList } from '../cluster/etcdjson';
import { EtcdOpError, masterNodes, opSuffix, requireFacts, waitFor, type EtcdDeps } from './deps';
import { ETCD_ENV, ETCD_UNIT, LEADER_QUERY_TIMEOUTS, putFile, readFiles, scriptCommand, staticPod } from './files';
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

/**
 * kube-apiserver.yaml with --etcd-servers set to `urls`, or null when this apiserver is not
 * changed: it uses the embedded etcd (not ours to change) or already names exactly these URLs.
 */
export function rewiredApiserver(text: string, masterAddresses: string[], urls: string[]): string | null {
  const cur = readApiserverManifest(text).etcdServers;
  if (cur.every((u) => isLocalEtcd(u, masterAddresses))) return null;
  const next = editApiserverEtcdServers(text, urls);
  return next === text ? null : next;
}

/** Per master whose apiserver changes: its kube-apiserver.yaml now and after the rewire (for plans). */
async function planRewire(
  deps: EtcdDeps,
  clusterId: string,
  urls: string[],
  log?: Log,
): Promise<{ node: ClusterNode; oldText: string; newText: string }[]> {
  const masters = masterNodes(deps, clusterId);
  const out = await Promise.all(
    masters.map(async (node) => {
      const r = await readFiles(deps, clusterId, node.id, [`${MANIFESTS}/kube-apiserver.yaml`], [], log);
      const oldText = r.files[0]?.content?.toString('utf8');
      const newText =
        oldText &&
        rewiredApiserver(
          oldText,
          masters.map((x) => x.address),
          urls,
        );
      return oldText && newText ? { node, oldText, newText } : null;
    }),
  );
  return out.filter((x) => !!x);
}

/** Rewrite --etcd-servers on every master whose apiserver uses the external etcd (rolling). */
async function rewireApiservers(deps: EtcdDeps, clusterId: string, urls: string[], log: Log): Promise<void> {
  const masters = masterNodes(deps, clusterId);
  for (const m of masters) {
    const r = await readFiles(deps, clusterId, m.id, [`${MANIFESTS}/kube-apiserver.yaml`], [], log);
    const text = r.files[0]?.content?.toString('utf8');
    if (!text) continue;
    const next = rewiredApiserver(
      text,
      masters.map((x) => x.address),
      urls,
    );
    if (!next) continue;
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
  /** What the plan shows, read when planned (nothing changed): see planMemberChange. */
  preview?: MemberPreview;
}

/** What a member change will do, read at plan time; the run uses the same data dir. */
export interface MemberPreview {
  /** The master that runs etcdctl, and the etcdctl.sh certificate arguments it uses. */
  master: ClusterNode;
  tls: { ca: string; cert: string; key: string };
  /** The member's ID as `member list` showed it when planned (remove), when etcd answered. */
  memberId?: string;
  /** The apiservers whose --etcd-servers change. */
  rewire: { node: ClusterNode; oldText: string; newText: string }[];
  /** member-add: data dir, and /etc/default/etcd and the unit as planned on the node. */
  add?: {
    dataDir: string;
    initialCluster: string;
    env: { oldText: string; newText: string };
    unit: { oldText: string; newText: string } | null;
    why?: string;
  };
}

export async function prepareMemberChange(
  deps: EtcdDeps,
  clusterId: string,
  nodeId: string,
  log?: Log,
  kind?: 'member-remove' | 'member-add',
): Promise<MemberCtx> {
  requireFacts(deps, clusterId);
  const node = deps.inventory.node(clusterId, nodeId);
  const members = await externalMembers(deps, clusterId, log);
  const ctx: MemberCtx = { deps, clusterId, node, members, urls: members.map((m) => clientUrl(m.node.address)) };
  if (kind) ctx.preview = await planMemberChange(ctx, kind, log);
  return ctx;
}

/** Read what the plan shows: the member's ID, the apiserver rewires, the files the node gets. */
export async function planMemberChange(
  ctx: MemberCtx,
  kind: 'member-remove' | 'member-add',
  log?: Log,
): Promise<MemberPreview> {
  const { deps, clusterId, node } = ctx;
  const master = masterNodes(deps, clusterId)[0];
  const tls = deps.ops.stackedTls(clusterId, master.id);
  const self = clientUrl(node.address);
  const others = ctx.urls.filter((u) => u !== self);
  if (kind === 'member-remove') {
    // A sick cluster may not answer (asked briefly): the plan then says the ID is looked up when the job runs.
    const list = await deps.ops
      .etcdctl(clusterId, master.id, ctx.urls, ['member', 'list', '-w', 'json', ...LEADER_QUERY_TIMEOUTS], {
        log,
        tls: STACKED_ETCD_TLS,
        timeoutMs: 8_000,
      })
      .then(parseMemberList)
      .catch(() => null);
    const memberId = list?.find((x) => x.peerUrls.includes(peerUrl(node.address)) || x.name === node.name)?.id;
    return { master, tls, memberId, rewire: await planRewire(deps, clusterId, others, log) };
  }
  const dataDir = `/var/lib/etcd-kes-${opSuffix()}`;
  const initialCluster = [
    ...ctx.members
      .filter((m) => m.node.id !== node.id)
      .map((m) => `${m.env.get('ETCD_NAME') ?? m.node.name}=${peerUrl(m.node.address)}`),
    `${node.name}=${peerUrl(node.address)}`,
  ].join(',');
  const token = memberToken(ctx);
  const r = await readFiles(deps, clusterId, node.id, [ETCD_ENV, ETCD_UNIT], [], log);
  const text = (p: string) => r.files.find((f) => f.path === p)?.content?.toString('utf8') ?? '';
  let found: Awaited<ReturnType<typeof deps.ops.discover>> | null = null;
  let why: string | undefined;
  try {
    found = await deps.ops.discover(clusterId, node.id, log);
    if (!found.tools.etcd) why = `no etcd binary on ${node.name} yet: install etcd tools first`;
  } catch (e) {
    why = (e as Error).message.split('\n')[0];
  }
  const newEnv = renderEtcdEnv(
    { name: node.name, address: node.address, dataDir },
    { initialCluster, token, state: 'existing' },
    found?.versions.etcd ?? null,
  );
  return {
    master,
    tls,
    rewire: await planRewire(deps, clusterId, [...new Set([...ctx.urls, self])], log),
    add: {
      dataDir,
      initialCluster,
      env: { oldText: text(ETCD_ENV), newText: newEnv },
      unit: found?.tools.etcd ? { oldText: text(ETCD_UNIT), newText: renderEtcdUnit(found.tools.etcd) } : null,
      why,
    },
  };
}

/** The cluster token the other members were started with. */
function memberToken(ctx: MemberCtx): string {
  return ctx.members.find((m) => m.node.id !== ctx.node.id)?.env.get('ETCD_INITIAL_CLUSTER_TOKEN') ?? 'kes-external';
}

/** How a plan shows ClusterOps.etcdctl(master, urls, args): etcdctl.sh with its quoted arguments. */
export function etcdctlCommand(p: Pick<MemberPreview, 'tls'>, urls: string[], args: string[]): string {
  return scriptCommand('etcdctl.sh', [urls.join(','), p.tls.ca, p.tls.cert, p.tls.key, ...args]);
}

/** The rewire step's plan: one kube-apiserver.yaml diff per master whose apiserver changes. */
function rewireItems(p: MemberPreview | undefined): PlanItem[] {
  if (!p) return [];
  if (!p.rewire.length)
    return [{ kind: 'note', text: 'No apiserver uses the external etcd: no kube-apiserver.yaml changes.' }];
  return p.rewire.map((a) => ({
    kind: 'file',
    node: a.node.name,
    path: `${MANIFESTS}/kube-apiserver.yaml`,
    diff: unifiedDiff(`${MANIFESTS}/kube-apiserver.yaml`, a.oldText, a.newText),
  }));
}

/** A file's diff for the plan, or a note when the node already has exactly that content. */
function fileItems(node: string, path: string, f: { oldText: string; newText: string }): PlanItem[] {
  const diff = unifiedDiff(path, f.oldText, f.newText);
  return diff ? [{ kind: 'file', node, path, diff }] : [{ kind: 'note', text: `${path} on ${node} stays as it is.` }];
}

/** The plan items of each step of a member change, by step id. */
export function memberPlanItems(ctx: MemberCtx, kind: 'member-remove' | 'member-add'): Record<string, PlanItem[]> {
  const p = ctx.preview;
  if (!p) return {};
  const { node } = ctx;
  const m = p.master.name;
  const self = clientUrl(node.address);
  const others = ctx.urls.filter((u) => u !== self);
  const cmd = (on: string, command: string): PlanItem => ({ kind: 'command', node: on, command });
  const unit = (action: string) => cmd(node.name, scriptCommand('systemd-unit.sh', [action, 'etcd']));
  if (kind === 'member-remove') {
    const dataDir = ctx.members.find((x) => x.node.id === node.id)?.env.get('ETCD_DATA_DIR');
    return {
      check: [
        cmd(m, etcdctlCommand(p, ctx.urls, ['member', 'list', '-w', 'json'])),
        cmd(m, etcdctlCommand(p, others, ['endpoint', 'health', '-w', 'json'])),
      ],
      remove: [
        cmd(m, etcdctlCommand(p, others, ['member', 'remove', p.memberId ?? `<ID of ${node.name}>`])),
        ...(p.memberId
          ? []
          : [
              {
                kind: 'note' as const,
                text: `etcd did not list ${node.name} when planned: its member ID is looked up by the check step.`,
              },
            ]),
      ],
      rewire: rewireItems(p),
      retire: [
        unit('stop'),
        unit('disable'),
        ...(dataDir ? [cmd(node.name, scriptCommand('move-aside.sh', [dataDir]))] : []),
      ],
    };
  }
  const a = p.add!;
  const pki = [
    'ca.crt',
    'server.crt',
    'server.key',
    'peer.crt',
    'peer.key',
    'healthcheck-client.crt',
    'healthcheck-client.key',
  ];
  return {
    check: [cmd(m, etcdctlCommand(p, ctx.urls, ['member', 'list', '-w', 'json']))],
    prepare: [
      ...(a.why ? [{ kind: 'note' as const, text: `When planned: ${a.why}.` }] : []),
      cmd(node.name, scriptCommand('prepare-external.sh', [a.dataDir])),
      ...pki.map((f): PlanItem => ({
        kind: 'upload',
        node: node.name,
        from: f === 'ca.crt' ? "the cluster's etcd CA" : 'issued from the etcd CA when the step runs',
        to: `${EXTERNAL_PKI}/${f}`,
      })),
      cmd(
        m,
        etcdctlCommand(p, others, ['member', 'add', node.name, `--peer-urls=${peerUrl(node.address)}`, '--learner']),
      ),
      {
        kind: 'note',
        text: 'ETCD_INITIAL_CLUSTER is written as `member add` prints it (planned: the members and the new one).',
      },
      ...fileItems(node.name, ETCD_ENV, a.env),
      ...(a.unit ? fileItems(node.name, ETCD_UNIT, a.unit) : []),
      unit('enable'),
      unit('start'),
    ],
    promote: [cmd(m, etcdctlCommand(p, others, ['member', 'promote', `<ID of ${node.name}>`]))],
    rewire: rewireItems(p),
  };
}

export function removeMemberJob(ctx: MemberCtx, clusterName: string): JobDef<MemberCtx> {
  const { deps, clusterId, node } = ctx;
  const others = () => ctx.urls.filter((u) => u !== clientUrl(node.address));
  const items = memberPlanItems(ctx, 'member-remove');
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
          ...(items.check ?? []),
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
        plan: () => items.remove ?? [],
        run: async (c, s) => {
          await reconfigure(() => ctl(deps, clusterId, others(), ['member', 'remove', c.memberId!], s.log), s.log);
        },
      },
      {
        id: 'rewire',
        title: 'Update every apiserver’s --etcd-servers (rolling)',
        plan: () => items.rewire ?? [],
        run: async (_c, s) => rewireApiservers(deps, clusterId, others(), s.log),
      },
      {
        id: 'retire',
        title: `Stop and disable etcd on ${node.name}, move its data dir aside`,
        node: node.name,
        plan: () => items.retire ?? [],
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
  const items = memberPlanItems(ctx, 'member-add');
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
        plan: () => items.check ?? [],
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
        plan: () => items.prepare ?? [],
        run: async (c, s) => {
          const f = await deps.ops.discover(clusterId, node.id, s.log);
          if (!f.tools.etcd)
            throw new EtcdOpError('TOOLS_MISSING', `No etcd binary on ${node.name}: install etcd tools first`);
          const ca = await readCa(deps, clusterId, s.log);
          const certs = await issueMemberCerts(ca, { hostname: f.hostname, address: node.address, name: node.name });
          const dataDir = c.preview?.add?.dataDir ?? `/var/lib/etcd-kes-${opSuffix()}`;
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
          const token = memberToken(c);
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
        plan: () => items.promote ?? [],
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
        plan: () => items.rewire ?? [],
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
  // The commands as ctl() runs them: etcdctl.sh on the first master with its own client files.
  const on = (args: string[], endpoints: string[]): PlanItem[] => {
    const master = masterNodes(deps, clusterId)[0];
    const tls = deps.ops.stackedTls(clusterId, master.id);
    return [{ kind: 'command', node: master.name, command: etcdctlCommand({ tls }, endpoints, args) }];
  };
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
            plan: () => on(['defrag', '--command-timeout=120s'], [u]),
            run: async (_c: object, s: { log: Log }) =>
              void (await ctl(deps, clusterId, [u], ['defrag', '--command-timeout=120s'], s.log)),
          }))
        : [
            {
              id: 'disarm',
              title: 'etcdctl alarm disarm',
              plan: () => on(['alarm', 'disarm'], urls),
              run: async (_c, s) => void (await ctl(deps, clusterId, urls, ['alarm', 'disarm'], s.log)),
            },
          ],
  };
}

export { ETCD_ENV, ETCD_UNIT, PARKED, staticPod, parseEtcdEnv, unifiedDiff };
