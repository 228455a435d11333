// "New cluster": from machines with nothing but SSH, an HA kubeadm cluster — the load balancer of
// the user's choice in front of the apiservers, masters, workers, a CNI and a demo workload — then
// initialized like any existing cluster. One job, one plan; every step is safe to run again (a
// prepared node changes nothing, a node already in the cluster is skipped), so a failed creation
// is finished by running the job again, not by starting over.
// The nodes come from the inventory by role (lb, master, worker): the wizard writes them there
// first, so host keys, keys and passphrases go through the same paths as for any cluster.
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { promises as fs } from 'node:fs';
import type { ClusterFacts, ClusterNode, ToolArchive } from '@shared/domain';
import type { CreateClusterRequest } from '@shared/jobs';
import type { Log } from '../cluster/ops';
import { kesValues } from '../cluster/ops';
import { EtcdOpError, transferDir, waitFor, type EtcdDeps } from '../etcd/deps';
import { putFile } from '../etcd/files';
import { installTools, type ToolCache } from '../etcd/tools';
import type { JobDef, StepDef } from '../jobs/types';
import { maskInJob } from '../jobs/scope';
import { checkCommandFor, renderLbConfig, type LbConfig } from './lb-config';
import {
  hostPort,
  initConfig,
  joinConfig,
  joinSecretsConfig,
  newJoinSecrets,
  type ClusterShape,
  type JoinSecrets,
  type NodeShape,
} from './kubeadm-configs';

export const DEMO_DEPLOYMENT = 'demo-nginx';
export const DEMO_NAMESPACE = 'default';
const APISERVER_PORT = 6443;

export interface CreateCtx {
  deps: EtcdDeps;
  clusterId: string;
  req: CreateClusterRequest;
  lb?: ClusterNode;
  masters: ClusterNode[];
  workers: ClusterNode[];
  endpoint: string;
  lbConfig?: LbConfig;
  secrets: JoinSecrets;
  /** The etcd tools archive to install on the masters (request.etcdToolsArchive), found in the cache. */
  toolsArchive?: ToolArchive;
  /** Runs the app's initialize on a master once the cluster exists. */
  initialize: (nodeId: string, log: Log) => Promise<ClusterFacts>;
  // filled while running
  /** Node ids that were in the cluster before this job touched them (kubeadm-node.sh status). */
  joined: Set<string>;
  kubernetesVersion?: string;
  caHash?: string;
  /** The master kubeadm init ran on, or the first master already in the cluster. */
  first?: ClusterNode;
  secretsUploaded?: boolean;
}

const byRole = (nodes: ClusterNode[], role: ClusterNode['roles'][number]) =>
  nodes.filter((n) => n.roles.includes(role));

/** Check the request against the inventory and build the context (nothing runs on nodes). */
export async function prepareCreate(
  deps: EtcdDeps,
  clusterId: string,
  req: CreateClusterRequest,
  initialize: CreateCtx['initialize'],
  tools: ToolCache,
): Promise<CreateCtx> {
  const toolsArchive = req.etcdToolsArchive
    ? (await tools.list()).find((a) => a.name === req.etcdToolsArchive)
    : undefined;
  if (req.etcdToolsArchive && !toolsArchive)
    throw new EtcdOpError('NOT_FOUND', `No cached archive ${req.etcdToolsArchive}; add or download one first`);
  const nodes = deps.inventory.get(clusterId).nodes;
  const masters = byRole(nodes, 'master');
  const workers = byRole(nodes, 'worker').filter((n) => !n.roles.includes('master'));
  const lbs = byRole(nodes, 'lb');
  if (!masters.length)
    throw new EtcdOpError('INVALID_INPUT', 'Give the new cluster at least one master (role "master")');
  if (req.lb.kind === 'none') {
    if (masters.length > 1)
      throw new EtcdOpError(
        'INVALID_INPUT',
        `${masters.length} masters need a load balancer in front of their apiservers`,
      );
    if (lbs.length)
      throw new EtcdOpError('INVALID_INPUT', `Node ${lbs[0].name} has the role "lb" but no load balancer was chosen`);
  } else if (lbs.length !== 1) {
    throw new EtcdOpError('INVALID_INPUT', `Give exactly one node the role "lb" (found ${lbs.length})`);
  }
  const lb = lbs[0];
  if (lb && lb.roles.includes('master') && req.lb.port === APISERVER_PORT)
    throw new EtcdOpError(
      'INVALID_INPUT',
      `The load balancer on master ${lb.name} cannot listen on 6443: its apiserver does`,
    );
  if (req.cniManifest.source === 'file') {
    const st = await fs.stat(req.cniManifest.path).catch(() => null);
    if (!st?.isFile()) throw new EtcdOpError('NOT_FOUND', `No CNI manifest file at ${req.cniManifest.path}`);
  }
  const lbConfig = lb
    ? renderLbConfig(req.lb.kind as Exclude<typeof req.lb.kind, 'none'>, {
        port: req.lb.port,
        masters: masters.map((m) => ({ name: m.name, address: m.address, port: APISERVER_PORT })),
      })
    : undefined;
  return {
    deps,
    clusterId,
    req,
    lb,
    masters,
    workers,
    endpoint: lb ? hostPort(lb.address, req.lb.port) : hostPort(masters[0].address, APISERVER_PORT),
    lbConfig,
    secrets: newJoinSecrets(),
    toolsArchive,
    initialize,
    joined: new Set(),
  };
}

/** Bytes to a 0600 file in the node's private transfer folder (removed when the job ends). */
export async function stageFile(
  c: { deps: EtcdDeps; clusterId: string },
  node: ClusterNode,
  name: string,
  content: string,
  log: Log,
): Promise<string> {
  const { deps, clusterId } = c;
  const { dir } = await transferDir(deps, clusterId, node, log);
  const remote = posix.join(dir, `${name}-${randomUUID().slice(0, 8)}`);
  log('info', `upload ${name} to ${node.name}:${remote} (${Buffer.byteLength(content)} bytes, mode 0600)`);
  await deps.pool.writeFile(deps.targetOf(clusterId, node.id), remote, content, { mode: 0o600 });
  return remote;
}

/**
 * Put an LB configuration in place on `node`: staged, checked by the LB's own checker, then
 * installed and the unit (re)started by lb-setup.sh (creation, growth and reset all use this).
 */
export async function applyLbConfig(
  c: { deps: EtcdDeps; clusterId: string },
  node: ClusterNode,
  cfg: LbConfig,
  port: number,
  log: Log,
): Promise<void> {
  const staged = await stageFile(c, node, 'lb-config', cfg.content, log);
  const args = [cfg.unit, cfg.configPath, staged, port, cfg.packages.join(','), '--', ...checkCommandFor(cfg, staged)];
  await c.deps.ops.run(c.clusterId, node.id, 'lb-setup.sh', args, { log, timeoutMs: 600_000 });
}

function run(
  ctx: CreateCtx,
  node: ClusterNode,
  script: string,
  args: (string | number)[],
  log: Log,
  timeoutMs = 600_000,
) {
  return ctx.deps.ops.run(ctx.clusterId, node.id, script, args, { log, timeoutMs });
}

function shape(ctx: CreateCtx): ClusterShape {
  return {
    endpoint: ctx.endpoint,
    kubernetesVersion: ctx.kubernetesVersion ?? `v${ctx.req.kubernetesMinor}.0`,
    podCidr: ctx.req.podCidr,
    serviceCidr: ctx.req.serviceCidr,
  };
}

function nodeShape(ctx: CreateCtx, n: ClusterNode): NodeShape {
  return { name: n.name, address: n.address, taint: ctx.workers.length > 0 || !n.roles.includes('master') };
}

const ignoreList = (ctx: CreateCtx) => ctx.req.ignorePreflightErrors.join(',');

function lbStep(ctx: CreateCtx): StepDef<CreateCtx>[] {
  const { lb, lbConfig: cfg } = ctx;
  if (!lb || !cfg) return [];
  return [
    {
      id: 'load-balancer',
      title: `Load balancer: ${ctx.req.lb.kind} on ${lb.name}, port ${ctx.req.lb.port} → every master's apiserver`,
      node: lb.name,
      plan: () => [
        { kind: 'file', node: lb.name, path: cfg.configPath, diff: cfg.content },
        ...(cfg.unitFile
          ? [{ kind: 'file' as const, node: lb.name, path: cfg.unitFile.path, diff: cfg.unitFile.content }]
          : []),
        {
          kind: 'command',
          node: lb.name,
          command: `bash lb-setup.sh ${cfg.unit} ${cfg.configPath} <staged> ${ctx.req.lb.port} ${cfg.packages.join(',')} -- ${checkCommandFor(cfg, '<staged>').join(' ')}`,
          asRoot: true,
        },
      ],
      run: async (c, s) => {
        // a package that ships no unit (envoy) gets ours first
        if (cfg.unitFile) await putFile(c.deps, c.clusterId, lb, cfg.unitFile.path, cfg.unitFile.content, 0o644, s.log);
        await applyLbConfig(c, lb, cfg, c.req.lb.port, s.log);
      },
    },
  ];
}

function prepareSteps(ctx: CreateCtx): StepDef<CreateCtx>[] {
  const nodes = [...ctx.masters, ...ctx.workers];
  return [
    {
      id: 'prepare',
      title: `Prepare ${nodes.length} node(s): kernel modules, sysctls, swap off, containerd, kubelet/kubeadm/kubectl ${ctx.req.kubernetesMinor} (held)`,
      parallel: true,
      children: nodes.map((n) => ({
        id: n.name,
        title: `Prepare ${n.name}`,
        node: n.name,
        plan: () => [
          {
            kind: 'command' as const,
            node: n.name,
            command: `bash node-prepare.sh ${ctx.req.kubernetesMinor}`,
            asRoot: true,
          },
        ],
        run: async (c: CreateCtx, s: { log: Log }) => {
          const out = await run(c, n, 'node-prepare.sh', [c.req.kubernetesMinor], s.log, 30 * 60_000);
          const changed = out.stdout.split('\n').filter((l) => l.startsWith('KES_CHANGED=')).length;
          s.log(
            'info',
            changed ? `${n.name}: ${changed} change(s) made` : `${n.name}: already prepared, nothing changed`,
          );
        },
      })),
    },
  ];
}

async function nodeStatus(ctx: CreateCtx, n: ClusterNode, log: Log) {
  const v = kesValues((await run(ctx, n, 'kubeadm-node.sh', ['status'], log)).stdout);
  return {
    joined: v.get('JOINED') === '1',
    controlPlane: v.get('CONTROL_PLANE') === '1',
    kubeadm: v.get('KUBEADM') ?? '',
  };
}

function statusStep(): StepDef<CreateCtx> {
  return {
    id: 'status',
    title: 'Find the nodes already in the cluster (a rerun skips them)',
    run: async (c, s) => {
      maskInJob(c.secrets.token);
      maskInJob(c.secrets.certificateKey);
      const all = [...c.masters, ...c.workers];
      const st = await Promise.all(all.map((n) => nodeStatus(c, n, s.log)));
      all.forEach((n, i) => st[i].joined && c.joined.add(n.id));
      const version = st.map((x) => x.kubeadm).find((v) => /^v\d+\.\d+\.\d+/.test(v));
      if (!version)
        throw new EtcdOpError('REMOTE_FAILED', 'kubeadm is not installed on the masters after preparing them');
      if (!version.startsWith(`v${c.req.kubernetesMinor}.`))
        throw new EtcdOpError(
          'VERSION_MISMATCH',
          `kubeadm on the nodes is ${version}, not ${c.req.kubernetesMinor}.x: a package hold or another repository kept an older one`,
        );
      c.kubernetesVersion = version.replace(/[^v0-9.].*$/, '');
      c.first = c.masters.find((m, i) => st[i].joined && st[i].controlPlane) ?? c.masters[0];
      const inCluster = all.filter((n) => c.joined.has(n.id)).map((n) => n.name);
      s.log(
        'info',
        inCluster.length ? `already in the cluster: ${inCluster.join(', ')}` : 'no node is in a cluster yet',
      );
    },
  };
}

function initStep(ctx: CreateCtx): StepDef<CreateCtx> {
  const first = ctx.masters[0];
  return {
    id: 'init',
    title: `kubeadm init on ${first.name} (control-plane endpoint ${ctx.endpoint}, certificates uploaded for the other masters)`,
    node: first.name,
    runIf: (c) => !c.joined.has(c.first!.id),
    plan: (c) => [
      {
        kind: 'file',
        node: first.name,
        path: '<transfer>/kubeadm-init.yaml (0600, removed after use)',
        diff: initConfig(shape(c), nodeShape(c, first), {
          token: '<bootstrap token>',
          certificateKey: '<certificate key>',
        }),
      },
      {
        kind: 'command',
        node: first.name,
        command: `kubeadm init --config <file> --upload-certs${ignoreList(c) ? ` --ignore-preflight-errors=${ignoreList(c)}` : ''}`,
        asRoot: true,
      },
    ],
    run: async (c, s) => {
      const f = await stageFile(
        c,
        first,
        'kubeadm-init.yaml',
        initConfig(shape(c), nodeShape(c, first), c.secrets),
        s.log,
      );
      await run(c, first, 'kubeadm-node.sh', ['init', f, ignoreList(c)], s.log, 20 * 60_000);
      c.joined.add(first.id);
      c.secretsUploaded = true;
    },
  };
}

/** A rerun, or a cluster that already ran: new token + certificates uploaded again under a new key. */
function secretsStep(): StepDef<CreateCtx> {
  return {
    id: 'join-secrets',
    title: 'Create a bootstrap token and upload the control-plane certificates for the joins',
    runIf: (c) => !c.secretsUploaded && [...c.masters, ...c.workers].some((n) => !c.joined.has(n.id)),
    run: async (c, s) => {
      const f = await stageFile(
        c,
        c.first!,
        'kubeadm-join-secrets.yaml',
        joinSecretsConfig(shape(c), nodeShape(c, c.first!), c.secrets),
        s.log,
      );
      await run(c, c.first!, 'kubeadm-node.sh', ['join-secrets', f], s.log);
      c.secretsUploaded = true;
    },
  };
}

function caHashStep(): StepDef<CreateCtx> {
  return {
    id: 'ca-hash',
    title: "Read the cluster CA's public key hash (joins check the API server against it)",
    runIf: (c) => [...c.masters, ...c.workers].some((n) => !c.joined.has(n.id)),
    run: async (c, s) => {
      const v = kesValues((await run(c, c.first!, 'kubeadm-node.sh', ['ca-hash'], s.log)).stdout);
      const hash = v.get('CA_HASH');
      if (!hash || !/^sha256:[0-9a-f]{64}$/.test(hash))
        throw new EtcdOpError('REMOTE_FAILED', 'Could not read the cluster CA hash');
      c.caHash = hash;
    },
  };
}

function joinStep(ctx: CreateCtx, n: ClusterNode, controlPlane: boolean): StepDef<CreateCtx> {
  return {
    id: n.name,
    title: `kubeadm join ${n.name}${controlPlane ? ' as a control-plane node (stacked etcd member)' : ' as a worker'}`,
    node: n.name,
    runIf: (c) => !c.joined.has(n.id),
    plan: (c) => [
      {
        kind: 'command',
        node: n.name,
        command: `kubeadm join --config <file: ${c.endpoint}, bootstrap token${controlPlane ? ', certificate key' : ''}>${ignoreList(c) ? ` --ignore-preflight-errors=${ignoreList(c)}` : ''}`,
        asRoot: true,
      },
    ],
    run: async (c, s) => {
      const cfg = joinConfig(shape(c), nodeShape(c, n), c.secrets, c.caHash!, controlPlane);
      const f = await stageFile(c, n, 'kubeadm-join.yaml', cfg, s.log);
      await run(c, n, 'kubeadm-node.sh', ['join', f, ignoreList(c)], s.log, 20 * 60_000);
      c.joined.add(n.id);
    },
  };
}

function joinSteps(ctx: CreateCtx): StepDef<CreateCtx>[] {
  const others = ctx.masters.slice(1);
  return [
    ...(others.length
      ? [
          {
            // one at a time: each control-plane join adds an etcd member, and etcd takes one change at a time
            id: 'join-masters',
            title: `Join ${others.length} more master(s), one at a time`,
            children: others.map((m) => joinStep(ctx, m, true)),
          },
        ]
      : []),
    ...(ctx.workers.length
      ? [
          {
            id: 'join-workers',
            title: `Join ${ctx.workers.length} worker(s)`,
            parallel: true,
            children: ctx.workers.map((w) => joinStep(ctx, w, false)),
          },
        ]
      : []),
  ];
}

function cniStep(ctx: CreateCtx): StepDef<CreateCtx> {
  const m = ctx.req.cniManifest;
  const what = m.source === 'url' ? m.url : m.path;
  return {
    id: 'cni',
    title: `Install the pod network: ${ctx.req.cni} (${m.source === 'url' ? 'release manifest' : 'local manifest file'})`,
    plan: (c) => [
      {
        kind: 'command',
        node: c.masters[0].name,
        command: `kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f ${what}`,
        asRoot: true,
      },
    ],
    run: async (c, s) => {
      const src =
        m.source === 'url' ? m.url : await stageFile(c, c.first!, 'cni.yaml', await fs.readFile(m.path, 'utf8'), s.log);
      await run(c, c.first!, 'kubectl-apply.sh', [src], s.log);
    },
  };
}

function demoDeployment(): unknown {
  const labels = { app: DEMO_DEPLOYMENT };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: DEMO_DEPLOYMENT, namespace: DEMO_NAMESPACE, labels },
    spec: {
      replicas: 3,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'nginx', image: 'nginx:stable', ports: [{ containerPort: 80 }] }] },
      },
    },
  };
}

function demoStep(): StepDef<CreateCtx> {
  const path = `/apis/apps/v1/namespaces/${DEMO_NAMESPACE}/deployments`;
  return {
    id: 'demo',
    title: `Deploy the demo workload (Deployment ${DEMO_DEPLOYMENT}, 3 replicas) and wait until it is available`,
    runIf: (c) => c.req.demo,
    plan: (c) => [
      ...(c.workers.length
        ? []
        : [
            {
              kind: 'note' as const,
              text: 'No workers: the masters were created without the control-plane taint, so pods can run on them.',
            },
          ]),
      {
        kind: 'command',
        node: c.masters[0].name,
        command: `POST ${path} (${DEMO_DEPLOYMENT}, image nginx:stable, 3 replicas)`,
      },
    ],
    run: async (c, s) => {
      const { deps, clusterId } = c;
      const first = c.first!;
      const existing = await deps.ops.kubeGet(clusterId, first.id, `${path}/${DEMO_DEPLOYMENT}`);
      if (existing.status === 404) {
        const r = await deps.ops.kubeApi(clusterId, first.id, 'POST', path, demoDeployment(), s.log);
        if (r.status !== 201 && r.status !== 200)
          throw new EtcdOpError('API_ERROR', `creating ${DEMO_DEPLOYMENT}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
      } else s.log('info', `${DEMO_DEPLOYMENT} exists already`);
      await waitFor(
        `Deployment ${DEMO_DEPLOYMENT} to have 3 available replicas`,
        async () => {
          const r = await deps.ops.kubeGet(clusterId, first.id, `${path}/${DEMO_DEPLOYMENT}`);
          const st = (JSON.parse(r.body) as { status?: { availableReplicas?: number } }).status;
          return (st?.availableReplicas ?? 0) >= 3;
        },
        { timeoutMs: 10 * 60_000, intervalMs: 2000, signal: undefined, log: s.log },
      );
      s.log('info', `${DEMO_DEPLOYMENT}: 3 replicas available`);
    },
  };
}

function toolsStep(ctx: CreateCtx): StepDef<CreateCtx>[] {
  const archive = ctx.toolsArchive;
  if (!archive) return [];
  return [
    {
      id: 'etcd-tools',
      title: `Install etcd tools ${archive.version} on the masters (etcdctl for health, snapshots and restores)`,
      parallel: true,
      children: ctx.masters.map((n) => ({
        id: n.name,
        title: `Install ${archive.name} on ${n.name}`,
        node: n.name,
        plan: () => [
          {
            kind: 'command' as const,
            node: n.name,
            command: `bash install-etcd-tools.sh ${archive.name} ${archive.sha256}`,
          },
        ],
        run: async (c: CreateCtx, s: { log: Log }) => {
          const r = await installTools(c.deps, c.clusterId, n, archive, s.log);
          s.log('info', `installed ${r.installed.join(', ')} ${r.version} on ${n.name}`);
        },
      })),
    },
  ];
}

function initializeStep(): StepDef<CreateCtx> {
  return {
    id: 'initialize',
    title: 'Initialize: discover the new cluster (masters, etcd members, mode) as for any existing cluster',
    run: async (c, s) => {
      const facts = await c.initialize(c.first!.id, s.log);
      s.log('info', `mode ${facts.mode}; ${facts.masters.length} master(s)`);
    },
  };
}

export function createClusterJob(ctx: CreateCtx, clusterName: string): JobDef<CreateCtx> {
  return {
    kind: 'create-cluster',
    title: `Create cluster ${clusterName}: ${ctx.masters.length} master(s), ${ctx.workers.length} worker(s), ${ctx.lb ? `${ctx.req.lb.kind} on ${ctx.lb.name}` : 'no load balancer'}`,
    destructive: false,
    clusterId: ctx.clusterId,
    clusterName,
    steps: [
      {
        id: 'record',
        title: 'Remember these options on the cluster (growing it and cleaning it up use them)',
        run: async (c) => {
          const { kind: _kind, ...creation } = c.req;
          await c.deps.inventory.setCreation(c.clusterId, creation);
        },
      },
      ...lbStep(ctx),
      ...prepareSteps(ctx),
      statusStep(),
      initStep(ctx),
      secretsStep(),
      caHashStep(),
      ...joinSteps(ctx),
      cniStep(ctx),
      demoStep(),
      ...toolsStep(ctx),
      initializeStep(),
    ],
    describeStop: (c, done) =>
      `Nodes in the cluster now: ${
        [...c.masters, ...c.workers]
          .filter((n) => c.joined.has(n.id))
          .map((n) => n.name)
          .join(', ') || 'none'
      } (${done.length} step(s) done). Run the job again to finish: nodes already prepared or joined are skipped. "Reset node" undoes a node.`,
  };
}
