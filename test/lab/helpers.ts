// Helpers for the lab self-tests (and later for integration tests that drive the app against a lab).
import { parseDocument } from 'yaml';
import { Lab, type LabOptions } from './index';
import { run, shq, waitFor } from './util';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Start a lab for a test file. KES_LAB_PREFIX_BASE / KES_LAB_SUBNET_POOL steer names and addresses. */
export function upTestLab(opts: LabOptions): Promise<Lab> {
  return Lab.up({ log: process.env.KES_LAB_VERBOSE ? (m) => console.log(`[lab] ${m}`) : undefined, ...opts });
}

export async function getJson(lab: Lab, path: string): Promise<{ status: number; body: Obj }> {
  const api = lab.api();
  try {
    const r = await api.call('GET', path);
    return { status: r.status, body: r.body as Obj };
  } finally {
    api.close();
  }
}

export async function mirrorPod(lab: Lab, name: string): Promise<Obj | undefined> {
  const r = await getJson(lab, `/api/v1/namespaces/kube-system/pods/${name}`);
  return r.status === 200 ? r.body : undefined;
}

export function containerRunning(pod: Obj | undefined): boolean {
  const c = pod?.status?.containerStatuses?.[0];
  return !!c?.state?.running && !!c?.ready;
}

/** Copy a (binary) file between hosts over SSH, as an operator would: ssh a cat | ssh b 'cat >'. */
export async function scpBetween(lab: Lab, from: string, to: string, path: string): Promise<void> {
  const a = lab.sshArgs(from).map(shq).join(' ');
  const b = lab.sshArgs(to).map(shq).join(' ');
  await run('bash', ['-c', `set -o pipefail; ssh ${a} ${shq(`cat ${path}`)} | ssh ${b} ${shq(`cat > ${path}`)}`]);
}

/**
 * Rewrite a kubeadm etcd.yaml for a restore (DESIGN §4): new --data-dir AND the etcd-data hostPath
 * (and its mount), a new --initial-cluster-token, the full --initial-cluster, state "new".
 */
export function editEtcdManifestForRestore(
  text: string,
  o: { dataDir: string; token: string; members: { name: string; address: string }[] },
): string {
  const doc = parseDocument(text);
  const spec = doc.toJS() as Obj;
  const c = spec.spec.containers[0];
  const cmd: string[] = c.command.filter(
    (f: string) => !/^--(data-dir|initial-cluster|initial-cluster-state|initial-cluster-token)=/.test(f),
  );
  cmd.push(
    `--data-dir=${o.dataDir}`,
    `--initial-cluster=${o.members.map((m) => `${m.name}=https://${m.address}:2380`).join(',')}`,
    '--initial-cluster-state=new',
    `--initial-cluster-token=${o.token}`,
  );
  const [bin, ...flags] = cmd;
  flags.sort();
  c.command = [bin, ...flags];
  for (const m of c.volumeMounts) if (m.name === 'etcd-data') m.mountPath = o.dataDir;
  for (const v of spec.spec.volumes) if (v.name === 'etcd-data') v.hostPath.path = o.dataDir;
  doc.setIn(['spec', 'containers', 0], doc.createNode(c));
  doc.setIn(['spec', 'volumes'], doc.createNode(spec.spec.volumes));
  return doc.toString();
}

/** Wait until every master's apiserver is ready and the LB answers. */
export async function waitApiReady(lab: Lab, timeoutMs = 60_000): Promise<void> {
  await Promise.all(
    lab.masters.map((m) =>
      waitFor(
        `apiserver ${m.name} ready`,
        async () => {
          const api = lab.api(m);
          try {
            return (await api.call('GET', '/readyz', undefined, 2000)).status === 200;
          } finally {
            api.close();
          }
        },
        timeoutMs,
        200,
      ),
    ),
  );
}
