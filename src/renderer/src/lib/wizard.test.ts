// Intent: the new-cluster wizard turns what the user typed into the spec the shared rules check,
// the inventory nodes it writes (an LB on a master's machine is ONE node with both roles; a
// renamed machine keeps its id) and the CreateClusterRequest the job schema accepts; a setup.conf
// import fills the form; errors block the step they belong to and every later one.
import { describe, expect, it } from 'vitest';
import { defaultCniManifestUrl, defaultPodCidr } from '@shared/cluster-spec';
import type { ClusterNode } from '@shared/domain';
import { CreateClusterRequest } from '@shared/jobs';
import { parseSetupConf } from '@shared/setup-conf';
import {
  applyImport,
  blockingErrors,
  createRequest,
  fieldLabel,
  formToSpec,
  importedFields,
  inventoryNodes,
  newWizardForm,
  nextName,
  parseIgnoreList,
  portOf,
  row,
  stepOfField,
  switchCni,
  syncInventory,
  wizardIssues,
  type WizardForm,
} from './wizard';

const KEY = { method: 'key-file', keyPath: '/root/.ssh/id_ed25519' } as const;

function form(patch: (f: WizardForm) => void = () => undefined): WizardForm {
  const f = newWizardForm();
  f.name = 'prod';
  f.lb.node = row('lb', '198.18.0.10');
  f.masters = [row('m1', '198.18.0.11'), row('m2', '198.18.0.12'), row('m3', '198.18.0.13')];
  f.workers = [row('w1', '198.18.0.21')];
  f.credential.keyPath = KEY.keyPath;
  patch(f);
  return f;
}

const fields = (issues: { field: string }[]) => issues.map((i) => i.field);

describe('form → spec', () => {
  it('parses ports (empty → default, junk → NaN), trims and unbrackets addresses', () => {
    expect(portOf('', 22)).toBe(22);
    expect(portOf(' 2222 ', 22)).toBe(2222);
    expect(portOf('22a', 22)).toBeNaN();
    const spec = formToSpec(
      form((f) => {
        f.masters = [row(' m1 ', ' [fd00::11] ', '', ' ')];
        f.lb.port = '';
      }),
    );
    expect(spec.masters[0]).toEqual({ name: 'm1', address: 'fd00::11', port: 22, user: 'root' });
    expect(spec.lb.port).toBe(6443);
  });

  it('a valid HA form has no errors; the defaults are calico, its pod CIDR and release manifest', () => {
    const f = form();
    expect(wizardIssues(f).errors).toEqual([]);
    expect(f.options.podCidr).toBe(defaultPodCidr('calico'));
    expect(formToSpec(f).options.cniManifest).toEqual({ source: 'url', url: defaultCniManifestUrl('calico') });
  });

  it('no load balancer: no LB node in the spec, and more than one master is an error', () => {
    const f = form((x) => (x.lb.kind = 'none'));
    expect(formToSpec(f).lb).toEqual({ kind: 'none', port: 6443 });
    expect(fields(wizardIssues(f).errors)).toContain('lb.kind');
    f.masters = [row('m1', '198.18.0.11')];
    expect(wizardIssues(f).errors).toEqual([]);
  });

  it("an LB on a master's address refuses 6443 (with a hint) and accepts 6643", () => {
    const f = form((x) => (x.lb.node = row('m1', '198.18.0.11')));
    const err = wizardIssues(f).errors.find((e) => e.field === 'lb.port');
    expect(err?.message).toMatch(/kube-apiserver listens on 6443.*6643/);
    f.lb.port = '6643';
    expect(wizardIssues(f).errors).toEqual([]);
  });

  it('an even number of masters is a warning, not an error', () => {
    const f = form((x) => x.masters.pop());
    const { errors, warnings } = wizardIssues(f);
    expect(errors).toEqual([]);
    expect(warnings.find((w) => w.field === 'masters')?.message).toMatch(/2 masters tolerate no more failures than 1/);
  });

  it('adds what the job request refuses: http manifests, relative files, bad ignore names', () => {
    const f = form((x) => (x.options.manifestUrl = 'http://mirror.local/calico.yaml'));
    const http = wizardIssues(f);
    expect(http.errors.find((e) => e.field === 'options.cniManifest.url')?.message).toMatch(/https/);
    // the spec's own "plain http" warning gives way to the error on the same field
    expect(fields(http.warnings)).not.toContain('options.cniManifest.url');
    f.options.manifestSource = 'file';
    f.options.manifestPath = '~/calico.yaml';
    expect(fields(wizardIssues(f).errors)).toEqual(['options.cniManifest.path']);
    f.options.manifestPath = '/srv/calico.yaml';
    f.options.ignorePreflightErrors = 'NumCPU, Mem;rm';
    expect(fields(wizardIssues(f).errors)).toEqual(['options.ignorePreflightErrors']);
    f.options.ignorePreflightErrors = 'NumCPU, Mem';
    expect(wizardIssues(f).errors).toEqual([]);
    expect(parseIgnoreList(' NumCPU,Mem  NumCPU ')).toEqual(['NumCPU', 'Mem']);
  });

  it("refuses another cluster's name, whatever its case", () => {
    const f = form();
    expect(wizardIssues(f, formToSpec(f), ['Prod']).errors).toEqual([
      { field: 'name', message: 'A cluster named "prod" already exists' },
    ]);
    expect(wizardIssues(f, formToSpec(f), ['staging']).errors).toEqual([]);
  });

  it('checks the shared credential like the node form does', () => {
    const f = form((x) => (x.credential = { ...x.credential, method: 'key-stored', pastedKey: 'ssh-ed25519 AAAA' }));
    expect(wizardIssues(f).errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/does not look like a private key/),
    ]);
    f.credential.method = 'password';
    expect(fields(wizardIssues(f).errors)).toEqual(['credential.password']);
    f.credential.method = 'agent';
    expect(wizardIssues(f).errors).toEqual([]);
    f.credential.method = 'key-file';
    f.credential.keyPath = 'id_rsa';
    expect(fields(wizardIssues(f).errors)).toEqual(['credential.keyPath']);
  });

  it('switching the CNI moves fields still at their defaults, keeps edited ones', () => {
    const o = newWizardForm().options;
    const flannel = switchCni(o, 'flannel');
    expect(flannel.podCidr).toBe('10.244.0.0/16');
    expect(flannel.manifestUrl).toBe(defaultCniManifestUrl('flannel'));
    const edited = switchCni({ ...o, podCidr: '10.32.0.0/16' }, 'flannel');
    expect(edited.podCidr).toBe('10.32.0.0/16');
  });
});

describe('steps', () => {
  it('maps fields to steps; an error blocks its own step and every later one', () => {
    expect(
      ['name', 'lb.port', 'masters.2.address', 'workers.0.name', 'credential.keyPath', 'options.podCidr'].map(
        stepOfField,
      ),
    ).toEqual([0, 0, 1, 2, 2, 3]);
    const errors = [
      { field: 'masters.0.address', message: 'x' },
      { field: 'options.podCidr', message: 'y' },
    ];
    expect(blockingErrors(errors, 0)).toEqual([]);
    expect(fields(blockingErrors(errors, 1))).toEqual(['masters.0.address']);
    expect(fields(blockingErrors(errors, 3))).toEqual(['masters.0.address', 'options.podCidr']);
  });

  it('names rows and fields for people', () => {
    expect(nextName('master', [row('master-1'), row('master-3')])).toBe('master-2');
    expect(nextName('worker', [])).toBe('worker-1');
    expect(fieldLabel('masters.1.address')).toBe('master 2 address');
    expect(fieldLabel('lb.node.address')).toBe('load balancer node address');
    expect(fieldLabel('options.podCidr')).toBe('pod CIDR');
  });
});

describe('what the wizard writes', () => {
  it("one inventory node per machine: the LB on a master's address and SSH port is that master with role lb", () => {
    const spec = formToSpec(
      form((x) => {
        x.lb.node = row('lb', '198.18.0.11');
        x.lb.port = '6643';
      }),
    );
    const nodes = inventoryNodes(spec, KEY);
    expect(nodes.map((n) => [n.name, n.address, n.roles])).toEqual([
      ['m1', '198.18.0.11', ['master', 'lb']],
      ['m2', '198.18.0.12', ['master']],
      ['m3', '198.18.0.13', ['master']],
      ['w1', '198.18.0.21', ['worker']],
    ]);
    expect(nodes.every((n) => n.auth === KEY && n.jumpNodeId === null)).toBe(true);
  });

  it('an LB of its own is a node of its own; kind none writes no LB node', () => {
    const nodes = inventoryNodes(formToSpec(form()), KEY);
    expect(nodes.map((n) => `${n.name}:${n.roles.join('+')}`)).toEqual([
      'm1:master',
      'm2:master',
      'm3:master',
      'w1:worker',
      'lb:lb',
    ]);
    const none = inventoryNodes(
      formToSpec(
        form((x) => {
          x.lb.kind = 'none';
          x.masters = [row('m1', '198.18.0.11')];
        }),
      ),
      KEY,
    );
    expect(none.map((n) => n.name)).toEqual(['m1', 'w1']);
  });

  it('syncs the inventory by machine: unchanged skipped, renamed keeps its id, gone removed', () => {
    const node = (id: string, name: string, address: string, roles: ClusterNode['roles']): ClusterNode => ({
      id,
      name,
      address,
      port: 22,
      user: 'root',
      roles,
      auth: KEY,
      jumpNodeId: null,
    });
    const existing = [
      node('a', 'm1', '198.18.0.11', ['master']),
      node('b', 'old-m2', '198.18.0.12', ['master']),
      node('c', 'm9', '198.18.0.19', ['master']),
    ];
    const desired = inventoryNodes(
      formToSpec(form((x) => (x.masters = [row('m1', '198.18.0.11'), row('m2', '198.18.0.12')]))),
      KEY,
    );
    const { upserts, removes } = syncInventory(existing, desired);
    expect(upserts.map((u) => [u.id ?? null, u.name])).toEqual([
      ['b', 'm2'],
      [null, 'w1'],
      [null, 'lb'],
    ]);
    expect(removes.map((n) => n.id)).toEqual(['c']);
    // the same spec again: nothing to do
    const after = [
      existing[0],
      { ...existing[1], name: 'm2' },
      node('d', 'w1', '198.18.0.21', ['worker']),
      node('e', 'lb', '198.18.0.10', ['lb']),
    ];
    expect(syncInventory(after, desired)).toEqual({ upserts: [], removes: [] });
    // a new credential is a change for every node
    const agent = inventoryNodes(
      formToSpec(form((x) => (x.masters = [row('m1', '198.18.0.11'), row('m2', '198.18.0.12')]))),
      {
        method: 'agent',
      },
    );
    expect(syncInventory(after, agent).upserts).toHaveLength(4);
  });

  it('builds a CreateClusterRequest the job schema accepts', () => {
    const f = form((x) => {
      x.options.manifestSource = 'file';
      x.options.manifestPath = '/srv/cni.yaml';
      x.options.ignorePreflightErrors = 'SystemVerification';
      x.options.demo = false;
    });
    const req = createRequest(formToSpec(f), f.options);
    expect(req).toEqual({
      kind: 'create-cluster',
      lb: { kind: 'haproxy', port: 6443 },
      kubernetesMinor: '1.36',
      podCidr: '192.168.0.0/16',
      serviceCidr: '10.96.0.0/12',
      cni: 'calico',
      cniManifest: { source: 'file', path: '/srv/cni.yaml' },
      ignorePreflightErrors: ['SystemVerification'],
      demo: false,
    });
    expect(CreateClusterRequest.parse(req)).toEqual(req);
    const url = form();
    expect(CreateClusterRequest.safeParse(createRequest(formToSpec(url), url.options)).success).toBe(true);
  });
});

describe('setup.conf import', () => {
  it('fills masters, workers, LB and pod CIDR; keeps name and credential; marks the fields shown', () => {
    const { spec, warnings } = parseSetupConf(
      [
        'masters=m1:198.18.0.11 m2:198.18.0.12 m3:198.18.0.13',
        'workers=w1:198.18.0.21',
        'loadbalancer=198.18.0.11',
        'lb_type=nginx',
        'lb_port=6643',
        'pod_network_cidr=10.32.0.0/16',
        'sleep_time=3',
      ].join('\n'),
    );
    expect(warnings).toEqual([expect.stringMatching(/^line 7: sleep_time/)]);
    const f = applyImport(form(), spec);
    expect(f.name).toBe('prod');
    expect(f.credential.keyPath).toBe(KEY.keyPath);
    expect(f.masters.map((m) => `${m.name}@${m.address}:${m.port}`)).toEqual([
      'm1@198.18.0.11:22',
      'm2@198.18.0.12:22',
      'm3@198.18.0.13:22',
    ]);
    expect(f.lb).toEqual({ kind: 'nginx', node: row('m1', '198.18.0.11'), port: '6643' });
    expect(f.options.podCidr).toBe('10.32.0.0/16');
    expect(wizardIssues(f).errors).toEqual([]);
    expect(inventoryNodes(formToSpec(f), KEY)[0].roles).toEqual(['master', 'lb']);
    expect(importedFields(spec)).toEqual(expect.arrayContaining(['masters.2.address', 'lb.port', 'lb.node.address']));
  });
});
