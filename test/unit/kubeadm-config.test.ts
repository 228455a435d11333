// Intent: kubeadm's stored ClusterConfiguration is rendered from the live etcd layout — the data
// dir of a stacked etcd, or exactly the apiservers' external endpoints and certificate files —
// changing only the etcd section (everything else byte for byte), keeping the stacked member's
// settings across a switch to external and back, and refusing layouts the masters disagree on.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  CLUSTER_CONFIGURATION,
  layoutFromLive,
  LOCAL_ETCD_ANNOTATION,
  renderClusterConfiguration,
  renderKubeadmConfigMap,
  restorePreviousConfigMap,
  type ConfigMapJson,
  type EtcdLayout,
  type LiveMaster,
} from '../../src/main/cluster/kubeadm-config';
import { unifiedDiff } from '../../src/main/etcd/manifests';

// As kubeadm 1.36 uploads it (lab cluster), plus settings users put in etcd.local.
const STACKED = `apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
caCertificateValidityPeriod: 87600h0m0s
certificateValidityPeriod: 8760h0m0s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controlPlaneEndpoint: 198.18.0.2:6443
controllerManager: {}
dns:
  disabled: true
encryptionAlgorithm: RSA-2048
etcd:
  local:
    dataDir: /var/lib/etcd
    extraArgs:
    - name: snapshot-count
      value: "5000"
    imageTag: 3.6.16-0
    serverCertSANs:
    - etcd.example
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: v1.36.3
networking:
  dnsDomain: cluster.local
  podSubnet: 198.18.192.0/18
  serviceSubnet: 198.19.255.0/24
proxy:
  disabled: true
scheduler: {}
`;

const EXTERNAL: EtcdLayout = {
  kind: 'external',
  endpoints: ['https://198.18.0.9:2379', 'https://198.18.0.7:2379'],
  caFile: '/etc/kubernetes/pki/etcd/ca.crt',
  certFile: '/etc/kubernetes/pki/apiserver-etcd-client.crt',
  keyFile: '/etc/kubernetes/pki/apiserver-etcd-client.key',
};

/** The changed lines of a diff (without headers). */
function changes(before: string, after: string): string[] {
  return unifiedDiff('/x', before, after)
    .split('\n')
    .filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l));
}

describe('renderClusterConfiguration', () => {
  it('stacked: moves only etcd.local.dataDir, keeping extraArgs, SANs and imageTag', () => {
    const r = renderClusterConfiguration(STACKED, {
      kind: 'stacked',
      dataDir: '/var/lib/etcd-kes-20260101-000000-abcd',
    });
    expect(changes(STACKED, r.text)).toEqual([
      '-    dataDir: /var/lib/etcd',
      '+    dataDir: /var/lib/etcd-kes-20260101-000000-abcd',
    ]);
    expect(r.warnings).toEqual([]);
    expect(r.stashedLocal).toBeNull();
  });

  it('returns the text byte for byte when it already describes the layout', () => {
    const r = renderClusterConfiguration(STACKED, { kind: 'stacked', dataDir: '/var/lib/etcd' });
    expect(r.text).toBe(STACKED);
  });

  it('external: etcd.external exactly as the apiservers name it, the local block saved for the way back', () => {
    const r = renderClusterConfiguration(STACKED, EXTERNAL);
    const cfg = parse(r.text) as { etcd: Record<string, unknown> };
    expect(cfg.etcd).toEqual({
      external: {
        caFile: EXTERNAL.caFile,
        certFile: EXTERNAL.certFile,
        endpoints: EXTERNAL.endpoints, // order kept
        keyFile: EXTERNAL.keyFile,
      },
    });
    // kubeadm's style: block sequences flush with their key, sorted keys
    expect(r.text).toContain(
      [
        'etcd:',
        '  external:',
        '    caFile: /etc/kubernetes/pki/etcd/ca.crt',
        '    certFile: /etc/kubernetes/pki/apiserver-etcd-client.crt',
        '    endpoints:',
        '    - https://198.18.0.9:2379',
        '    - https://198.18.0.7:2379',
        '    keyFile: /etc/kubernetes/pki/apiserver-etcd-client.key',
        'imageRepository: registry.k8s.io',
      ].join('\n'),
    );
    // nothing outside etcd changed
    const { etcd: _a, ...rest } = parse(STACKED) as Record<string, unknown>;
    const { etcd: _b, ...restAfter } = cfg as Record<string, unknown>;
    expect(restAfter).toEqual(rest);
    expect(JSON.parse(r.stashedLocal!)).toEqual({
      dataDir: '/var/lib/etcd',
      extraArgs: [{ name: 'snapshot-count', value: '5000' }],
      imageTag: '3.6.16-0',
      serverCertSANs: ['etcd.example'],
    });
  });

  it('back to stacked: the saved local settings return with the new data dir', () => {
    const ext = renderClusterConfiguration(STACKED, EXTERNAL);
    const back = renderClusterConfiguration(
      ext.text,
      { kind: 'stacked', dataDir: '/var/lib/etcd-kes-x' },
      ext.stashedLocal,
    );
    expect(back.warnings).toEqual([]);
    expect(back.stashedLocal).toBeNull();
    expect(changes(STACKED, back.text)).toEqual(['-    dataDir: /var/lib/etcd', '+    dataDir: /var/lib/etcd-kes-x']);
  });

  it('back to stacked without saved settings: the data dir only, with a warning', () => {
    const ext = renderClusterConfiguration(STACKED, EXTERNAL);
    const back = renderClusterConfiguration(ext.text, { kind: 'stacked', dataDir: '/var/lib/etcd' }, null);
    expect((parse(back.text) as { etcd: unknown }).etcd).toEqual({ local: { dataDir: '/var/lib/etcd' } });
    expect(back.warnings.join()).toMatch(/imageTag/);
  });

  it('external to other external endpoints: updated in place, the saved local settings kept', () => {
    const ext = renderClusterConfiguration(STACKED, EXTERNAL);
    const moved = renderClusterConfiguration(
      ext.text,
      { ...EXTERNAL, endpoints: ['https://198.18.0.5:2379'] },
      ext.stashedLocal,
    );
    expect(changes(ext.text, moved.text)).toEqual([
      '-    - https://198.18.0.9:2379',
      '-    - https://198.18.0.7:2379',
      '+    - https://198.18.0.5:2379',
    ]);
    expect(moved.stashedLocal).toBe(ext.stashedLocal);
  });

  it('adds an etcd section when there is none, and reads v1beta3', () => {
    const v3 = 'apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.30.0\n';
    const r = renderClusterConfiguration(v3, { kind: 'stacked', dataDir: '/data/etcd' });
    expect(parse(r.text)).toEqual({
      apiVersion: 'kubeadm.k8s.io/v1beta3',
      kind: 'ClusterConfiguration',
      kubernetesVersion: 'v1.30.0',
      etcd: { local: { dataDir: '/data/etcd' } },
    });
  });

  it('refuses what is not a ClusterConfiguration it knows', () => {
    expect(() =>
      renderClusterConfiguration('kind: InitConfiguration\napiVersion: kubeadm.k8s.io/v1beta4\n', EXTERNAL),
    ).toThrow(/no ClusterConfiguration/);
    expect(() =>
      renderClusterConfiguration('kind: ClusterConfiguration\napiVersion: kubeadm.k8s.io/v1beta2\n', EXTERNAL),
    ).toThrow(/apiVersion/);
    expect(() => renderClusterConfiguration('etcd: [\n', EXTERNAL)).toThrow(/ClusterConfiguration/);
  });
});

const master = (name: string, address: string, servers: string[], dataDir: string | null): LiveMaster => ({
  name,
  address,
  apiserver: {
    etcdServers: servers,
    etcdCaFile: '/etc/kubernetes/pki/etcd/ca.crt',
    etcdCertFile: '/etc/kubernetes/pki/apiserver-etcd-client.crt',
    etcdKeyFile: '/etc/kubernetes/pki/apiserver-etcd-client.key',
  },
  etcdDataDir: dataDir,
});
const LOCAL = ['https://127.0.0.1:2379'];

describe('layoutFromLive', () => {
  it('stacked: every apiserver on its local member; the data dir from etcd.yaml', () => {
    expect(
      layoutFromLive([
        master('m1', '198.18.0.2', LOCAL, '/var/lib/etcd-kes-1'),
        master('m2', '198.18.0.3', LOCAL, '/var/lib/etcd-kes-1'),
      ]),
    ).toEqual({ layout: { kind: 'stacked', dataDir: '/var/lib/etcd-kes-1' }, warnings: [] });
  });

  it('stacked with different data dirs: the first master’s, with a warning', () => {
    const r = layoutFromLive([master('m1', '198.18.0.2', LOCAL, '/a'), master('m2', '198.18.0.3', LOCAL, '/b')]);
    expect(r.layout).toEqual({ kind: 'stacked', dataDir: '/a' });
    expect(r.warnings[0]).toMatch(/m1: \/a, m2: \/b/);
  });

  it('external: endpoints and certificate files exactly as the apiservers name them', () => {
    const servers = EXTERNAL.endpoints;
    const r = layoutFromLive([
      master('m1', '198.18.0.2', servers, null),
      master('m2', '198.18.0.3', servers, '/var/lib/etcd'),
    ]);
    expect(r).toEqual({ layout: EXTERNAL, warnings: [] });
  });

  it('refuses masters that disagree, a half-local apiserver, and a local one without a member', () => {
    expect(() =>
      layoutFromLive([master('m1', '198.18.0.2', LOCAL, '/a'), master('m2', '198.18.0.3', EXTERNAL.endpoints, null)]),
    ).toThrow(/m1: stacked, m2: external/);
    expect(() => layoutFromLive([master('m1', '198.18.0.2', [...LOCAL, ...EXTERNAL.endpoints], '/a')])).toThrow(
      /mixed/,
    );
    expect(() => layoutFromLive([master('m1', '198.18.0.2', LOCAL, null)])).toThrow(/no etcd.yaml is active/);
    expect(() => layoutFromLive([{ ...master('m1', '198.18.0.2', LOCAL, '/a'), apiserver: null }])).toThrow(
      /no kube-apiserver/,
    );
    // the master's own address counts as local (isLocalEtcd)
    expect(layoutFromLive([master('m1', '198.18.0.2', ['https://198.18.0.2:2379'], '/a')]).layout.kind).toBe('stacked');
  });

  it('refuses https endpoints without the client certificate flags', () => {
    const m = master('m1', '198.18.0.2', EXTERNAL.endpoints, null);
    m.apiserver!.etcdKeyFile = undefined;
    expect(() => layoutFromLive([m])).toThrow(/--etcd-keyfile/);
  });
});

describe('renderKubeadmConfigMap / restorePreviousConfigMap', () => {
  const cm: ConfigMapJson = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'kubeadm-config',
      namespace: 'kube-system',
      resourceVersion: '212',
      managedFields: [{ manager: 'kubeadm' }],
    },
    data: { [CLUSTER_CONFIGURATION]: STACKED },
  };

  it('keeps the resourceVersion (a concurrent change fails the write), drops managedFields, saves etcd.local', () => {
    const r = renderKubeadmConfigMap(cm, EXTERNAL);
    expect(r.changed).toBe(true);
    expect(r.before).toBe(STACKED);
    expect(r.configMap.metadata.resourceVersion).toBe('212');
    expect(r.configMap.metadata.managedFields).toBeUndefined();
    expect(r.configMap.data![CLUSTER_CONFIGURATION]).toBe(r.after);
    expect(JSON.parse(r.configMap.metadata.annotations![LOCAL_ETCD_ANNOTATION]).imageTag).toBe('3.6.16-0');
    // and back: the annotation goes once the settings are back in etcd.local
    const back = renderKubeadmConfigMap(r.configMap, { kind: 'stacked', dataDir: '/var/lib/etcd' });
    expect(back.after).toBe(STACKED);
    expect(back.configMap.metadata.annotations).toBeUndefined();
    expect(cm.metadata.managedFields).toBeDefined(); // input untouched
  });

  it('nothing to change when it already matches', () => {
    expect(renderKubeadmConfigMap(cm, { kind: 'stacked', dataDir: '/var/lib/etcd' }).changed).toBe(false);
  });

  it('refuses a ConfigMap without ClusterConfiguration', () => {
    expect(() => renderKubeadmConfigMap({ metadata: {}, data: {} }, EXTERNAL)).toThrow(/no ClusterConfiguration key/);
  });

  it('a rollback puts the previous content back only over what the job wrote', () => {
    const r = renderKubeadmConfigMap(cm, EXTERNAL);
    const written = { previous: r.before, previousStash: null, after: r.after };
    const back = restorePreviousConfigMap(r.configMap, written);
    expect(back?.data?.[CLUSTER_CONFIGURATION]).toBe(STACKED);
    expect(back?.metadata.annotations).toBeUndefined();
    // the etcd brought back holds its own content: left alone
    expect(restorePreviousConfigMap(cm, written)).toBeNull();
  });
});
