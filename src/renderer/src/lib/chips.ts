// Pure rules of the status chips: what a chip says and its colour. Healthy is green (either etcd
// serving the apiservers), down is red, in between amber; an etcd tool is only "missing" when
// the node's etcd version has it (etcdutl exists from etcd 3.5 on). No state, no API calls.
import type { MasterFact, ModeName } from '@shared/domain';
import type { Tone } from './jobs';

/** The cluster mode: both "-up" modes are healthy (green); down red; mixed amber; unknown grey. */
export function modeTone(mode: ModeName | null): Tone {
  if (mode === 'embedded-up' || mode === 'external-up') return 'ok';
  if (mode?.startsWith('down')) return 'danger';
  if (mode === 'mixed') return 'warn';
  return 'neutral';
}

/** Major and minor of a version string ("v3.4.23", "3.5.17-0" → [3, 4]); null when unreadable. */
export function minorOf(version: string | null | undefined): [number, number] | null {
  const m = /(\d+)\.(\d+)/.exec(version ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** Whether an etcd of this version ships etcdutl (3.5 and later); null when the version is unknown. */
export function hasEtcdutl(version: string | null | undefined): boolean | null {
  const v = minorOf(version);
  if (!v) return null;
  return v[0] > 3 || (v[0] === 3 && v[1] >= 5);
}

export type ToolName = 'etcd' | 'etcdctl' | 'etcdutl';

export interface ToolCell {
  text: string;
  tone: Tone;
  /** A tool the node should have and lacks (flagged; "Install tools…" is offered). */
  missing: boolean;
  title?: string;
}

/**
 * One tool of a master in the facts table. `clusterVersion` is the etcd the cluster runs (its
 * image); without it the master's own tool versions tell. etcdutl on etcd 3.4 is "not in 3.4",
 * neutral; a master's etcd binary is not needed on the host while its member runs from the
 * kubeadm image.
 */
export function toolCell(m: MasterFact, tool: ToolName, clusterVersion: string | null): ToolCell {
  const path = m.tools[tool];
  if (path) return { text: m.versions[tool] ?? 'present', tone: 'ok', missing: false, title: path };
  const version = clusterVersion ?? m.versions.etcd ?? m.versions.etcdctl;
  if (tool === 'etcdutl' && hasEtcdutl(version) === false) {
    const v = minorOf(version)!;
    return {
      text: `not in ${v[0]}.${v[1]}`,
      tone: 'neutral',
      missing: false,
      title: 'etcdutl exists from etcd 3.5 on; etcd 3.4 restores with etcdctl',
    };
  }
  if (tool === 'etcd' && m.etcdManifest !== 'absent')
    return {
      text: 'runs from its image',
      tone: 'neutral',
      missing: false,
      title: 'The stacked member runs from the kubeadm etcd image; no etcd binary is needed on the host',
    };
  return { text: 'missing', tone: 'warn', missing: true };
}

/** A master lacks etcd tools the app needs (etcdctl; etcdutl too from etcd 3.5 on). */
export function lacksTools(m: MasterFact, clusterVersion: string | null): boolean {
  return toolCell(m, 'etcdctl', clusterVersion).missing || toolCell(m, 'etcdutl', clusterVersion).missing;
}
