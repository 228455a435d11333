// The last step of every job that moves etcd (restore onto the stacked members, switch both ways,
// bring back a state, restore onto the external etcd the apiservers use): rewrite kubeadm's stored
// ClusterConfiguration (ConfigMap kube-system/kubeadm-config) from the live manifests, so the next
// `kubeadm upgrade` keeps etcd where it now is. The ConfigMap lives in etcd, so a restored snapshot
// brings back the ClusterConfiguration of its own time: what is written is rendered at the end,
// from what the masters run then, never from the plan. The plan shows the expected diff, the log
// the one written. Rendering is cluster/kubeadm-config.ts; the API is reached through a master
// with its admin.conf (kube-api.sh via ClusterOps.kubeApi, the one quoting path).
import type { ClusterNode } from '@shared/domain';
import type { Log } from '../cluster/ops';
import type { PlanItem, StepDef } from '../jobs/types';
import {
  KUBEADM_CONFIG_API_PATH,
  LOCAL_ETCD_ANNOTATION,
  layoutFromLive,
  renderKubeadmConfigMap,
  restorePreviousConfigMap,
  type ConfigMapJson,
  type EtcdLayout,
  type LiveMaster,
} from '../cluster/kubeadm-config';
import { EtcdOpError, type EtcdDeps } from './deps';
import { MANIFESTS, readFiles } from './files';
import { readApiserverManifest, readEtcdManifest, unifiedDiff } from './manifests';

/** What a job did to kubeadm-config (kept in the job's context). */
export interface KubeadmConfigTrack {
  /** Set just before the write: what was there and what the job wrote (for a rollback). */
  written?: { previous: string; previousStash: string | null; after: string };
  /** Why it could not be written (the job's outcome says so). */
  failed?: string;
}

const CM = 'kubeadm-config';
const DIFF_PATH = `${KUBEADM_CONFIG_API_PATH}#ClusterConfiguration`;

export function describeLayout(l: EtcdLayout): string {
  return l.kind === 'stacked'
    ? `stacked etcd, data dir ${l.dataDir}`
    : `external etcd ${l.endpoints.join(',')} (ca ${l.caFile}, cert ${l.certFile}, key ${l.keyFile})`;
}

/** One master's part of the layout, from its active manifests' text (undefined: not active). */
export function liveMaster(node: ClusterNode, apiserverYaml?: string, etcdYaml?: string): LiveMaster {
  const a = apiserverYaml ? readApiserverManifest(apiserverYaml) : null;
  return {
    name: node.name,
    address: node.address,
    apiserver: a && {
      etcdServers: a.etcdServers,
      etcdCaFile: a.etcdCaFile,
      etcdCertFile: a.etcdCertFile,
      etcdKeyFile: a.etcdKeyFile,
    },
    etcdDataDir: etcdYaml ? readEtcdManifest(etcdYaml).dataDir : null,
  };
}

/** The layout the masters run now, from their active manifests. */
export async function liveLayout(
  deps: EtcdDeps,
  clusterId: string,
  masters: ClusterNode[],
  log?: Log,
): Promise<{ layout: EtcdLayout; warnings: string[] }> {
  const api = `${MANIFESTS}/kube-apiserver.yaml`;
  const etcd = `${MANIFESTS}/etcd.yaml`;
  const live = await Promise.all(
    masters.map(async (n) => {
      const r = await readFiles(deps, clusterId, n.id, [api, etcd], [], log);
      const text = (p: string) => r.files.find((f) => f.path === p)?.content?.toString('utf8');
      return liveMaster(n, text(api), text(etcd));
    }),
  );
  return layoutFromLive(live);
}

/** GET kubeadm-config through the first master that answers; null when the cluster has none. */
async function readConfigMap(
  deps: EtcdDeps,
  clusterId: string,
  masters: ClusterNode[],
  log?: Log,
): Promise<{ node: ClusterNode; cm: ConfigMapJson } | null> {
  const errors: string[] = [];
  for (const node of masters) {
    try {
      const r = await deps.ops.kubeGet(clusterId, node.id, KUBEADM_CONFIG_API_PATH, log);
      if (r.status === 200) return { node, cm: JSON.parse(r.body) as ConfigMapJson };
      if (r.status === 404) return null;
      errors.push(`${node.name}: HTTP ${r.status}${apiMessage(r.body)}`);
    } catch (e) {
      errors.push(`${node.name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new EtcdOpError('KUBEADM_CONFIG_FAILED', `cannot read ConfigMap kube-system/${CM} (${errors.join('; ')})`);
}

function apiMessage(body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: string }).message;
    return m ? ` (${m})` : '';
  } catch {
    return '';
  }
}

async function put(deps: EtcdDeps, clusterId: string, node: ClusterNode, cm: ConfigMapJson, log: Log) {
  return deps.ops.kubeApi(clusterId, node.id, 'PUT', KUBEADM_CONFIG_API_PATH, cm, log);
}

/**
 * Render kubeadm-config from the live layout and write it (optimistic concurrency: a change made
 * meanwhile is read again, up to 3 times), then read it back. `onlyExternal`: leave it alone
 * unless the apiservers use an external etcd (restore onto the external etcd).
 */
export async function writeKubeadmConfig(
  deps: EtcdDeps,
  clusterId: string,
  masters: ClusterNode[],
  track: KubeadmConfigTrack,
  log: Log,
  opts: { onlyExternal?: boolean; before?: () => Promise<void> } = {},
): Promise<void> {
  const { layout, warnings } = await liveLayout(deps, clusterId, masters, log);
  if (opts.onlyExternal && layout.kind !== 'external') {
    log('info', `the apiservers do not use the external etcd (${describeLayout(layout)}): ${CM} is not concerned`);
    return;
  }
  await opts.before?.();
  for (const w of warnings) log('stderr', `warning: ${w}`);
  for (let attempt = 1; ; attempt++) {
    const got = await readConfigMap(deps, clusterId, masters, log);
    if (!got) {
      log(
        'stderr',
        `warning: the cluster has no ConfigMap kube-system/${CM} (not made by kubeadm?): nothing to keep true`,
      );
      return;
    }
    const r = renderKubeadmConfigMap(got.cm, layout);
    for (const w of r.warnings) log('stderr', `warning: ${w}`);
    if (!r.changed) {
      log('info', `${CM} already describes the live layout (${describeLayout(layout)})`);
      return;
    }
    log('info', `${CM}: ClusterConfiguration for the live layout (${describeLayout(layout)}):`);
    log('info', unifiedDiff(DIFF_PATH, r.before, r.after));
    track.written = {
      previous: r.before,
      previousStash: got.cm.metadata.annotations?.[LOCAL_ETCD_ANNOTATION] ?? null,
      after: r.after,
    };
    const res = await put(deps, clusterId, got.node, r.configMap, log);
    if (res.status === 409 && attempt < 3) {
      log('info', `${CM} changed meanwhile (HTTP 409); reading it again`);
      continue;
    }
    if (res.status !== 200)
      throw new EtcdOpError('KUBEADM_CONFIG_FAILED', `PUT ${CM}: HTTP ${res.status}${apiMessage(res.body)}`);
    const back = await readConfigMap(deps, clusterId, [got.node, ...masters.filter((m) => m !== got.node)], log);
    if (back?.cm.data?.ClusterConfiguration !== r.after)
      throw new EtcdOpError('KUBEADM_CONFIG_FAILED', `${CM} read back differs from what was written`);
    log('info', `${CM} now describes the live layout: a kubeadm upgrade keeps it`);
    return;
  }
}

/**
 * The way back after the job had written kubeadm-config: the previous content again, when the
 * ConfigMap still holds what the job wrote (a rollback onto the old etcd brings the old content
 * back by itself). A failure is logged as an error; it does not undo the rollback.
 */
export async function undoKubeadmConfig(
  deps: EtcdDeps,
  clusterId: string,
  masters: ClusterNode[],
  track: KubeadmConfigTrack | undefined,
  log: Log,
): Promise<void> {
  if (!track?.written) return;
  try {
    const got = await readConfigMap(deps, clusterId, masters, log);
    const previous = got && restorePreviousConfigMap(got.cm, track.written);
    if (!got || !previous) {
      log('info', `${CM} holds the content of the etcd brought back; left as it is`);
      return;
    }
    const res = await put(deps, clusterId, got.node, previous, log);
    if (res.status !== 200) throw new Error(`PUT ${CM}: HTTP ${res.status}${apiMessage(res.body)}`);
    log('info', `${CM} is back to its content from before the job`);
  } catch (e) {
    log('error', `could not put ${CM} back as it was before the job: ${(e as Error).message}`);
  }
}

/** What the job's outcome says when kubeadm-config could not be written ('' when it was). */
export function kubeadmConfigOutcome(track: KubeadmConfigTrack | undefined): string {
  if (!track?.failed) return '';
  return (
    `kubeadm's stored configuration (ConfigMap kube-system/${CM}) was not updated: ${track.failed}. ` +
    'It may still describe the etcd layout from before, so a `kubeadm upgrade` (or `kubeadm join --control-plane`) ' +
    "would put the cluster back on it. Before either, make its etcd section match the apiservers' --etcd-servers and " +
    "etcd.yaml's --data-dir (the change is in this job's log when it got that far; " +
    '`kubectl -n kube-system edit configmap kubeadm-config`).'
  );
}

/** Plan items: the expected change of kubeadm-config for `layout` (read now; never fails the plan). */
async function previewItems(
  deps: EtcdDeps,
  clusterId: string,
  masters: ClusterNode[],
  layout: EtcdLayout | null,
  onlyExternal = false,
): Promise<PlanItem[]> {
  const note: PlanItem = {
    kind: 'note',
    text:
      `${onlyExternal ? 'When the apiservers use this external etcd: once they are ready again' : 'Once the apiservers serve from the new etcd'}, ` +
      `ConfigMap kube-system/${CM} is rewritten from the live manifests ` +
      '(data dir, or external endpoints and certificate files), so that `kubeadm upgrade` keeps this layout. ' +
      'A restored snapshot may carry another ClusterConfiguration: the change really written is in the job log.',
  };
  if (!layout) return [note];
  try {
    // every master at once: a plan must not wait for one unreachable apiserver after another
    let none = false;
    const got = await Promise.any(
      masters.map(async (m) => {
        const g = await readConfigMap(deps, clusterId, [m]);
        if (!g) none = true;
        return g ?? Promise.reject(new Error('no ConfigMap'));
      }),
    ).catch((e: AggregateError) => {
      if (none) return null;
      throw new Error((e.errors as Error[]).map((x) => x.message).join('; '));
    });
    if (!got)
      return [note, { kind: 'note', text: `The cluster has no ConfigMap kube-system/${CM}: nothing to keep true.` }];
    const r = renderKubeadmConfigMap(got.cm, layout);
    const items: PlanItem[] = [note];
    if (r.changed)
      items.push({
        kind: 'file',
        node: got.node.name,
        path: DIFF_PATH,
        diff: unifiedDiff(DIFF_PATH, r.before, r.after),
      });
    else items.push({ kind: 'note', text: `${CM} already describes this layout (${describeLayout(layout)}).` });
    for (const w of r.warnings) items.push({ kind: 'note', text: `Warning: ${w}` });
    return items;
  } catch (e) {
    return [note, { kind: 'note', text: `${CM} cannot be read now (${(e as Error).message}); it is read at the end.` }];
  }
}

/**
 * The step. `planned`: the layout the job will leave (for the plan's diff; null: unknown until the
 * end). A failure says what it means (kubeadmConfigOutcome) and is recorded in the context.
 */
export function kubeadmConfigStep<C extends { kubeadmConfig?: KubeadmConfigTrack }>(
  deps: EtcdDeps,
  clusterId: string,
  opts: {
    masters: (c: C) => ClusterNode[];
    planned: (c: C) => EtcdLayout | null | Promise<EtcdLayout | null>;
    /** Before writing, once the layout is known (e.g. wait until the apiservers are ready again). */
    before?: (c: C, log: Log) => Promise<void>;
    onlyExternal?: boolean;
  },
): StepDef<C> {
  return {
    id: 'kubeadm-config',
    title: "Keep kubeadm's stored configuration true (ConfigMap kubeadm-config: where etcd is)",
    plan: async (c) => previewItems(deps, clusterId, opts.masters(c), await opts.planned(c), opts.onlyExternal),
    run: async (c, s) => {
      const track = (c.kubeadmConfig ??= {});
      try {
        await writeKubeadmConfig(deps, clusterId, opts.masters(c), track, s.log, {
          onlyExternal: opts.onlyExternal,
          before: opts.before && (() => opts.before!(c, s.log)),
        });
      } catch (e) {
        track.failed = (e as Error).message;
        throw new EtcdOpError('KUBEADM_CONFIG_FAILED', kubeadmConfigOutcome(track));
      }
    },
  };
}
