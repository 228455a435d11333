// A throwaway single-member etcd with client TLS on a loopback address (Debian's etcd 3.4), and
// the PKI kubeadm would give a master: etcd CA, a server certificate for the address, and a
// healthcheck-client certificate — in a folder laid out like /etc/kubernetes/pki/etcd.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../fixtures/sshd';

const run = promisify(execFile);

export interface TlsEtcd {
  /** https://HOST:PORT */
  endpoint: string;
  host: string;
  port: number;
  /** ca.crt, healthcheck-client.{crt,key}, server.{crt,key} */
  pkiDir: string;
  dir: string;
  etcdctl(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

async function makePki(pki: string, host: string): Promise<void> {
  const ossl = (...a: string[]) => run('openssl', a, { cwd: pki });
  await ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  await ossl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=etcd-ca', '-days', '2', '-out', 'ca.crt');
  for (const [name, cn, ext] of [
    ['server', host, `subjectAltName=IP:${host},IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth`],
    ['healthcheck-client', 'kube-etcd-healthcheck-client', 'extendedKeyUsage=clientAuth'],
  ]) {
    await fs.writeFile(join(pki, `${name}.ext`), ext + '\n');
    await ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
    await ossl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
    await ossl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
  }
}

/**
 * `host`: a loopback address (127.0.0.0/8). `binDir`: where etcd and etcdctl are (default: PATH,
 * Debian's 3.4); e.g. the lab's cached 3.5 / 3.6 releases.
 */
export async function startTlsEtcd(host = '127.0.0.2', extraArgs: string[] = [], binDir?: string): Promise<TlsEtcd> {
  const bin = (name: string) => (binDir ? join(binDir, name) : name);
  if (!/^127\./.test(host)) throw new Error('loopback only');
  const dir = await fs.mkdtemp(join(tmpdir(), 'kes-tls-etcd-'));
  const pki = join(dir, 'pki');
  await fs.mkdir(pki);
  await makePki(pki, host);
  const [cp, pp] = [await freePort(host), await freePort('127.0.0.1')];
  const endpoint = `https://${host}:${cp}`;
  const proc: ChildProcess = spawn(
    bin('etcd'),
    [
      '--name=t',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=http://127.0.0.1:${pp}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${pp}`,
      `--initial-cluster=t=http://127.0.0.1:${pp}`,
      `--cert-file=${join(pki, 'server.crt')}`,
      `--key-file=${join(pki, 'server.key')}`,
      `--trusted-ca-file=${join(pki, 'ca.crt')}`,
      '--client-cert-auth',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: '' } },
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const etcdctl = async (...args: string[]) =>
    (
      await run(
        bin('etcdctl'),
        [
          `--endpoints=${endpoint}`,
          `--cacert=${join(pki, 'ca.crt')}`,
          `--cert=${join(pki, 'healthcheck-client.crt')}`,
          `--key=${join(pki, 'healthcheck-client.key')}`,
          ...args,
        ],
        { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 64 << 20 },
      )
    ).stdout;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await etcdctl('endpoint', 'health');
      break;
    } catch (e) {
      if (Date.now() > deadline || proc.exitCode !== null) {
        proc.kill('SIGKILL');
        await fs.rm(dir, { recursive: true, force: true });
        throw new Error(`TLS etcd did not start: ${(e as Error).message}\n${stderr}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    endpoint,
    host,
    port: cp,
    pkiDir: pki,
    dir,
    etcdctl,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
