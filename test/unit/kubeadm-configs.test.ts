// Intent: the files the app hands `kubeadm init` / `kubeadm join` when it creates a cluster are
// what the REAL kubeadm 1.36 accepts (`kubeadm config validate`, the lab's cached build), carry the
// load balancer as control-plane endpoint and the CIDRs, and the join secrets they hold never reach
// a job's log, errors or the events the renderer gets (jobs/scope.ts maskInJob + kubeadm's shapes).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  caCertHash,
  hostPort,
  initConfig,
  joinConfig,
  joinSecretsConfig,
  newJoinSecrets,
} from '../../src/main/kube/kubeadm-configs';
import { JobHistory } from '../../src/main/jobs/history';
import { JobRunner } from '../../src/main/jobs/runner';
import { maskInJob } from '../../src/main/jobs/scope';
import type { LogLine } from '../../src/shared/jobs';

const KUBEADM = '/var/cache/kes-lab/kubernetes/v1.36.3/kubeadm';
const tmp = mkdtempSync(join(tmpdir(), 'kes-kubeadm-cfg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const shape = {
  endpoint: hostPort('198.18.7.10', 8443),
  kubernetesVersion: 'v1.36.3',
  podCidr: '198.18.128.0/17',
  serviceCidr: '198.19.240.0/20',
};
const secrets = newJoinSecrets();
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- YAML documents read back for assertions
type Doc = Record<string, any>;

/** `kubeadm config validate` of the real kubeadm: exit 0 or the error it printed. */
function validate(name: string, text: string): string {
  const f = join(tmp, name);
  writeFileSync(f, text, { mode: 0o600 });
  try {
    execFileSync(KUBEADM, ['config', 'validate', '--config', f], { stdio: 'pipe' });
    return 'ok';
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr ?? e);
  }
}

describe('kubeadm configuration files', () => {
  it("makes secrets in kubeadm's own formats", () => {
    expect(secrets.token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    expect(secrets.certificateKey).toMatch(/^[0-9a-f]{64}$/);
    expect(newJoinSecrets().token).not.toBe(secrets.token);
    expect(hostPort('fd00::1', 6443)).toBe('[fd00::1]:6443');
  });

  it('init: the LB is the control-plane endpoint, the CIDRs and the secrets are set', () => {
    const docs = parseAllDocuments(initConfig(shape, { name: 'm1', address: '198.18.7.11', taint: true }, secrets)).map(
      (d) => d.toJS() as Doc,
    );
    const init = docs.find((d) => d.kind === 'InitConfiguration')!;
    const cluster = docs.find((d) => d.kind === 'ClusterConfiguration')!;
    expect(cluster.controlPlaneEndpoint).toBe('198.18.7.10:8443');
    expect(cluster.networking).toEqual({ podSubnet: shape.podCidr, serviceSubnet: shape.serviceCidr });
    expect(cluster.kubernetesVersion).toBe('v1.36.3');
    expect(init.certificateKey).toBe(secrets.certificateKey);
    expect(init.bootstrapTokens[0].token).toBe(secrets.token);
    expect(init.localAPIEndpoint.advertiseAddress).toBe('198.18.7.11');
    expect(init.nodeRegistration.taints).toBeUndefined();
    const untainted = parseAllDocuments(
      initConfig(shape, { name: 'm1', address: '198.18.7.11', taint: false }, secrets),
    );
    expect((untainted[0].toJS() as Doc).nodeRegistration.taints).toEqual([]);
  });

  it.skipIf(!existsSync(KUBEADM))(
    'the real kubeadm 1.36 accepts init, join (master and worker) and join-secrets files',
    () => {
      const m = { name: 'm2', address: '198.18.7.12', taint: true };
      const hash = `sha256:${'ab'.repeat(32)}`;
      expect(
        validate('init.yaml', initConfig(shape, { name: 'm1', address: '198.18.7.11', taint: true }, secrets)),
      ).toBe('ok');
      expect(validate('join-cp.yaml', joinConfig(shape, m, secrets, hash, true))).toBe('ok');
      expect(validate('join-w.yaml', joinConfig(shape, { ...m, name: 'w1' }, secrets, hash, false))).toBe('ok');
      expect(validate('secrets.yaml', joinSecretsConfig(shape, m, secrets))).toBe('ok');
      // and the check is real: a misspelt field is refused
      expect(
        validate(
          'bad.yaml',
          initConfig(shape, { name: 'm1', address: '198.18.7.11', taint: true }, secrets).replace(
            'podSubnet',
            'podSubnett',
          ),
        ),
      ).not.toBe('ok');
    },
  );

  it('the CA hash is the SPKI sha256 kubeadm prints', () => {
    const key = execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ed25519',
        '-nodes',
        '-keyout',
        join(tmp, 'k'),
        '-subj',
        '/CN=kubernetes',
        '-days',
        '1',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    ).toString();
    const viaOpenssl = execFileSync(
      'sh',
      ['-c', 'openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | sed "s/^.* //"'],
      { input: key },
    )
      .toString()
      .trim();
    expect(caCertHash(key)).toBe(`sha256:${viaOpenssl}`);
  });
});

describe('join secrets never reach the job record', () => {
  it('masks registered values and kubeadm-shaped secrets in log lines, step errors and events', async () => {
    const history = await JobHistory.open(await fs.mkdtemp(join(tmp, 'h-')));
    const events: LogLine[] = [];
    const runner = new JobRunner({ history, onLog: (_id, l) => events.push(l) });
    const s = newJoinSecrets();
    const other = newJoinSecrets(); // not registered: caught by kubeadm's shapes
    const def = {
      kind: 't',
      title: 't',
      destructive: false,
      clusterId: 'c',
      clusterName: 'c',
      steps: [
        {
          id: 'init',
          title: 'init',
          run: async (_c: object, st: { log: (s: 'stdout', t: string) => void }) => {
            maskInJob(s.certificateKey);
            st.log(
              'stdout',
              `kubeadm join 198.18.7.10:8443 --token ${s.token} --discovery-token-ca-cert-hash sha256:00 --control-plane --certificate-key ${s.certificateKey}`,
            );
            st.log('stdout', `[upload-certs] Using certificate key:\n${s.certificateKey}`);
            st.log('stdout', `token ${other.token}`);
            throw new Error(`kubeadm failed with key ${s.certificateKey}`);
          },
        },
      ],
    };
    const rec = await runner.run(await runner.plan(def, {}), def, {});
    const everything = JSON.stringify(rec) + JSON.stringify(events);
    expect(everything).not.toContain(s.token);
    expect(everything).not.toContain(s.certificateKey);
    expect(everything).not.toContain(other.token);
    expect(everything).toContain('--certificate-key ********');
    expect(rec.status).toBe('failed');
  });
});
